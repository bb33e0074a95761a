"""Google Cloud Functions (gen2) HTTP entry point: `functions-framework --target predict`.

The model loads and compiles once per instance, here at import (cold start)."""

import os
import sys
from pathlib import Path

import functions_framework

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HDR_FUNCTION_DIR", str(HERE))
if (HERE / "hdr_jax").is_dir():  # Deployed folder: the package sits beside this file.
    sys.path.insert(0, str(HERE))

from hdr_jax.serving import create_service  # noqa: E402

service = create_service()


@functions_framework.http
def predict(request):
    return service.handle(request)
