"""Google Cloud Functions (gen2) HTTP entry point: `functions-framework --target predict`.

The model loads and compiles once per instance at cold start (see `lifecycle.ColdStart`)."""

import os
import sys
from pathlib import Path

import functions_framework

# flax imports IPython, where installed, only to ask whether it is running inside it: 0.4 s of
# a cold start. A serving process never is, so IPython reads as absent here.
sys.modules.setdefault("IPython", None)

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HDR_FUNCTION_DIR", str(HERE))
if (HERE / "hdr_jax").is_dir():  # Deployed folder: the package sits beside this file.
    sys.path.insert(0, str(HERE))

from hdr_jax.lifecycle import create_api  # noqa: E402

api = create_api()


@functions_framework.http
def predict(request):
    return api.handle(request)
