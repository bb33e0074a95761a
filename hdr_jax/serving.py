"""The HTTP prediction service behind `function/main.py` (functions-framework, Flask requests).

Contract (README, "API"): POST images as multipart `image` fields, a raw `image/*` body or JSON
`{"image"|"images"}`; `mode` = digit | number; GET for health; OPTIONS for CORS. Bad input gets
a 4xx `{"error": ...}`, never a 5xx or a stack trace. Uploads stay in memory.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header

from hdr_jax import preprocess
from hdr_jax.inference import Predictor

log = logging.getLogger(__name__)
MODES = ("digit", "number")
REPO_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "alexnet-mnist"


@dataclasses.dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = preprocess.MAX_PIXELS
    max_images: int = 256

    @classmethod
    def from_env(cls) -> Limits:
        env = os.environ.get
        return cls(max_body_bytes=int(env("HDR_MAX_BODY_BYTES", cls.max_body_bytes)),
                   max_pixels=int(env("HDR_MAX_PIXELS", cls.max_pixels)),
                   max_images=int(env("HDR_MAX_IMAGES", cls.max_images)))


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _memory_stream(*_args, **_kwargs) -> io.BytesIO:
    return io.BytesIO()  # Never spool uploads to temporary files.


def _b64_image(value: object) -> bytes:
    if not isinstance(value, str):
        raise preprocess.PreprocessError("each JSON image must be a base64 string or data: URL")
    if value.startswith("data:"):
        head, _, value = value.partition(",")
        if ";base64" not in head:
            raise preprocess.PreprocessError("data: URLs must be base64-encoded")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise preprocess.PreprocessError("the image is not valid base64") from None


def _png_data_url(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), "L").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Service:
    def __init__(self, predictor: Predictor, limits: Limits | None = None,
                 allowed_origins: str = "*", prediction_log: str | None = None):
        self.predictor = predictor
        self.limits = limits or Limits()
        self.allowed = [o.strip() for o in allowed_origins.split(",") if o.strip()] or ["*"]
        self.prediction_log = prediction_log
        self._log_lock = threading.Lock()
        self.answered = threading.Event()  # Set once the first prediction has been made.
        info = predictor.info
        self.facts = {"status": "ok", "model": info.get("name", "hdr-jax"),
                      "test_accuracy": info.get("test_accuracy"), "step": info.get("step"),
                      "modes": list(MODES), "max_images": self.limits.max_images,
                      "max_body_bytes": self.limits.max_body_bytes,
                      "max_pixels": self.limits.max_pixels}

    # -- HTTP -----------------------------------------------------------------------------

    def handle(self, request) -> tuple[str, int, dict]:
        headers = self._cors(request.headers.get("Origin"))
        try:
            if request.method == "OPTIONS":
                return "", 204, headers
            if request.method == "GET":
                return self._json(self.facts, 200, headers)
            if request.method != "POST":
                raise RequestError(405, f"method {request.method} is not allowed; use POST "
                                        "to predict or GET for health")
            images, options = self._read(request)
            body = self.predict(images, **options)
            status = 200
            if len(images) == 1 and "error" in body:
                status = body.pop("status")
            return self._json(body, status, headers)
        except RequestError as e:
            return self._json({"error": str(e)}, e.status, headers)
        except Exception:  # A bug of ours: log it, answer without a trace.
            log.exception("unexpected error")
            return self._json({"error": "internal error"}, 500, headers)

    def _cors(self, origin: str | None) -> dict:
        if "*" in self.allowed:
            allow = "*"
        elif origin in self.allowed:
            allow = origin
        else:
            allow = self.allowed[0]
        return {"Access-Control-Allow-Origin": allow, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "3600"}

    @staticmethod
    def _json(body: dict, status: int, headers: dict) -> tuple[str, int, dict]:
        return json.dumps(body), status, {**headers, "Content-Type": "application/json"}

    def _read(self, request) -> tuple[list[bytes], dict]:
        length = request.content_length
        if length is not None and length > self.limits.max_body_bytes:
            raise RequestError(413, f"the request body is {length} bytes; the limit is "
                                    f"{self.limits.max_body_bytes}")
        ctype = (request.mimetype or "").lower()
        args = request.args
        fields: dict = {}
        if ctype == "multipart/form-data":
            body = self._body(request)
            boundary = parse_options_header(request.headers.get("Content-Type", ""))[1].get(
                "boundary", "")
            if not boundary:
                raise RequestError(400, "the multipart body has no boundary")
            parser = MultiPartParser(stream_factory=_memory_stream,
                                     max_form_parts=self.limits.max_images + 16)
            try:
                form, files = parser.parse(io.BytesIO(body), boundary.encode(), len(body))
            except Exception:
                raise RequestError(400, "the multipart body could not be read") from None
            images = [f.read() for f in files.getlist("image")]
            fields = form
            if not images:
                raise RequestError(400, "no file in the form field 'image'")
        elif ctype.startswith("image/"):
            images = [self._body(request)]
        elif ctype == "application/json":
            try:
                payload = json.loads(self._body(request))
            except (ValueError, UnicodeDecodeError):
                raise RequestError(400, "the body is not valid JSON") from None
            if not isinstance(payload, dict) or not ({"image", "images"} & payload.keys()):
                raise RequestError(400, "JSON must be {\"image\": ...} or {\"images\": [...]}")
            raw = payload["images"] if "images" in payload else [payload["image"]]
            if not isinstance(raw, list) or not raw:
                raise RequestError(400, "'images' must be a non-empty list")
            images = raw  # Decoded per image, so one bad item fails only its slot.
            fields = {k: v for k, v in payload.items() if k in ("mode", "include_input")}
        else:
            raise RequestError(415, f"unsupported content type {ctype or '(none)'}; send "
                                    "multipart/form-data, image/* or application/json")
        if len(images) > self.limits.max_images:
            raise RequestError(413, f"{len(images)} images; the limit is "
                                    f"{self.limits.max_images} per request")
        mode = str(fields.get("mode") or args.get("mode") or "digit").lower()
        if mode not in MODES:
            raise RequestError(400, f"unknown mode {mode!r}; use 'digit' or 'number'")
        include = str(fields.get("include_input") or args.get("include_input") or "")
        return images, {"mode": mode,
                        "include_input": include.lower() in ("1", "true", "yes", "on")}

    def _body(self, request) -> bytes:
        # Content-Length was checked already; this bounds a chunked body too.
        data = request.stream.read(self.limits.max_body_bytes + 1)
        if len(data) > self.limits.max_body_bytes:
            raise RequestError(413, f"the request body is larger than "
                                    f"{self.limits.max_body_bytes} bytes")
        return data

    # -- Prediction -------------------------------------------------------------------------

    def predict(self, images: list, mode: str = "digit", include_input: bool = False) -> dict:
        """Per image: MNIST-format digits, one model call for all of them, results in order."""
        prepared: list = []
        for item in images:
            try:
                raw = item if isinstance(item, bytes) else _b64_image(item)
                grey = preprocess.decode(raw, self.limits.max_pixels)
                digits = (preprocess.preprocess_number(grey) if mode == "number"
                          else [preprocess.preprocess_digit(grey)])
                prepared.append((raw, digits))
            except preprocess.PreprocessError as e:
                prepared.append((None, e))
        batch = [d.image for _, ds in prepared if isinstance(ds, list) for d in ds]
        probabilities = iter(self.predictor.predict(np.stack(batch)) if batch else [])
        results = []
        for raw, digits in prepared:
            if isinstance(digits, preprocess.PreprocessError):
                results.append({"error": str(digits), "status": digits.status})
                continue
            answers = []
            for d in digits:
                p = next(probabilities)
                answer = {"digit": int(p.argmax()), "confidence": float(p.max()),
                          "probabilities": [round(float(x), 6) for x in p]}
                if mode == "number":
                    answer["box"] = list(d.box)
                if include_input:
                    answer["input"] = _png_data_url(d.image)
                answers.append(answer)
            if mode == "number":
                result = {"number": "".join(str(a["digit"]) for a in answers), "digits": answers}
            else:
                result = answers[0]
            results.append(result)
            self._log(raw, mode, result)
        self.answered.set()
        if len(results) == 1:
            return results[0]
        for r in results:
            r.pop("status", None)
        return {"results": results}

    def _log(self, raw: bytes, mode: str, result: dict) -> None:
        if not self.prediction_log:
            return
        slim = {k: v for k, v in result.items() if k not in ("probabilities", "input")}
        if "digits" in slim:
            slim["digits"] = [{k: v for k, v in d.items() if k in ("digit", "confidence", "box")}
                              for d in slim["digits"]]
        line = json.dumps({"time": time.time(), "mode": mode,
                           "sha256": hashlib.sha256(raw).hexdigest(), "result": slim})
        with self._log_lock, open(self.prediction_log, "a") as f:
            f.write(line + "\n")


def checkpoint_path() -> Path:
    """$HDR_CHECKPOINT, else `checkpoint/` beside a deployed function, else the shipped one."""
    if os.environ.get("HDR_CHECKPOINT"):
        return Path(os.environ["HDR_CHECKPOINT"])
    bundled = Path(os.environ.get("HDR_FUNCTION_DIR", ".")) / "checkpoint"
    return bundled if (bundled / "info.json").is_file() else REPO_CHECKPOINT


def create_service(idle_seconds: float = 2.0) -> Service:
    """Load the model and compile the batch-1 shape (what a first request needs). The larger
    buckets compile in the background once the first prediction is answered (or after
    `idle_seconds` without one), so that first answer neither waits for them nor shares the
    CPU with them."""
    predictor = Predictor.from_checkpoint(checkpoint_path(), precompile=(1,))
    # While batch 1 compiles (XLA does not hold the GIL): a first request's imports and code.
    pen = np.full((64, 96), 255, np.uint8)
    pen[16:48, 20:26] = pen[16:48, 60:66] = 0
    preprocess.preprocess_number(pen)
    predictor.warmup(predictor.buckets[:1])
    service = Service(predictor, Limits.from_env(),
                      allowed_origins=os.environ.get("HDR_ALLOWED_ORIGINS", "*"),
                      prediction_log=os.environ.get("HDR_PREDICTION_LOG") or None)

    def compile_the_rest() -> None:
        service.answered.wait(timeout=idle_seconds)
        predictor.warmup(predictor.buckets[1:])

    # Not a daemon: a process that exits while XLA compiles would abort instead of exiting.
    threading.Thread(target=compile_the_rest, name="hdr-warmup").start()
    return service


class ColdStart:
    """Creates the service once per serving process, as early as is safe.

    functions-framework (and so Cloud Functions) serves through gunicorn, which imports the
    function in a master process and then forks workers; JAX's runtime threads do not survive
    a fork. So importing only imports (JAX's backend stays down), and loading starts in a
    background thread right after the fork, in the worker; a process that never forks (the
    Flask debug server, tests) loads at its first request. Requests wait for the load."""

    def __init__(self, factory=create_service):
        self._factory = factory
        self._lock = threading.Lock()
        self._service: Service | None = None
        self._error: BaseException | None = None
        os.register_at_fork(after_in_child=self._start_in_background)

    def _start_in_background(self) -> None:
        self._lock = threading.Lock()  # A lock copied across fork may be held; start afresh.
        threading.Thread(target=self.get, daemon=True, name="hdr-cold-start").start()

    def get(self) -> Service:
        with self._lock:
            if self._service is None and self._error is None:
                try:
                    self._service = self._factory()
                except BaseException as e:  # Keep failing loudly, not reloading per request.
                    log.exception("could not load the model")
                    self._error = e
            if self._error is not None:
                raise RuntimeError(f"the model could not be loaded: {self._error}")
            return self._service

    def handle(self, request) -> tuple[str, int, dict]:
        try:
            service = self.get()
        except RuntimeError as e:
            return json.dumps({"error": str(e)}), 503, {"Content-Type": "application/json"}
        return service.handle(request)
