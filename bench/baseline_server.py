"""What the replaced system did, on our model: resize the upload straight to 28x28 and make one
model call per request (Flask, threaded). The serving benchmark's baseline.

  python bench/baseline_server.py --port 8090
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from flask import Flask, request
from PIL import Image


def naive_preprocess(raw: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(raw)).convert("L").resize((28, 28))
    return np.asarray(image, np.float32) / 255.0


def build_app() -> Flask:
    # Imported here: `bench/serving.py --library` imports this module for naive_preprocess
    # and must choose which hdr_jax the rest of it reads with.
    from hdr_jax.data import NUM_CLASSES
    from hdr_jax.inference import Predictor
    from hdr_jax.lifecycle import checkpoint_path

    predictor = Predictor.from_checkpoint(checkpoint_path(), buckets=(1,))
    predictor.warmup()
    app = Flask(__name__)

    @app.route("/", methods=["GET", "POST"])
    def predict():
        if request.method == "GET":
            return {"status": "ok"}
        try:
            image = naive_preprocess(request.get_data())
        except Exception:
            return {"error": "bad image"}, 400
        p = predictor.predict(image[None])[0, :NUM_CLASSES]  # The digits alone.
        return json.dumps({"digit": int(p.argmax()), "confidence": float(p.max())})

    return app


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    build_app().run("127.0.0.1", args.port, threaded=True)
