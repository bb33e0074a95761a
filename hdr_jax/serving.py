"""The HTTP edge of the prediction function (functions-framework, Flask requests): parsing,
limits, CORS, API keys, JSON and statuses. Recognition is `recognition.Recognizer`, which
knows nothing of HTTP; `lifecycle.py` builds both for a serving process.

Contract (README, "API"): POST images as multipart `image` fields, a raw `image/*` body or JSON
`{"image"|"images"}`; `mode` = digit | number; GET for health; OPTIONS for CORS. Bad input gets
a 4xx `{"error": ...}`, never a 5xx or a stack trace. Uploads stay in memory.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import io
import json
import logging
import os
from collections.abc import Callable

import numpy as np
from PIL import Image
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header

from hdr_jax import preprocess
from hdr_jax.recognition import MODES, DigitReading, NumberReading, Reading, Recognizer

log = logging.getLogger(__name__)


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
    """A request the edge refuses as a whole: its status and one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BadUpload(Exception):
    """One item of a JSON request that is not an image encoding (fails only its slot)."""


class ModelUnavailable(Exception):
    """The model could not be loaded in this process (503)."""


def _memory_stream(*_args, **_kwargs) -> io.BytesIO:
    return io.BytesIO()  # Never spool uploads to temporary files.


def _b64_image(value: object) -> bytes:
    if not isinstance(value, str):
        raise BadUpload("each JSON image must be a base64 string or data: URL")
    if value.startswith("data:"):
        head, _, value = value.partition(",")
        if ";base64" not in head:
            raise BadUpload("data: URLs must be base64-encoded")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadUpload("the image is not valid base64") from None


def _png_data_url(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), "L").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# Each failure of an upload -> its status; the first matching class wins (subclasses first).
STATUS_OF = ((preprocess.ImageTooLarge, 413), (preprocess.NoDigitFound, 422),
             (preprocess.PreprocessError, 400), (BadUpload, 400))


def _status_of(error: Exception) -> int:
    return next(status for kind, status in STATUS_OF if isinstance(error, kind))


def reading_json(reading: Reading, include_input: bool = False) -> dict:
    """The JSON of one reading (README, "API")."""
    def digit(d: DigitReading, with_box: bool) -> dict:
        out = {"digit": d.digit, "confidence": d.confidence,
               "low_confidence": d.low_confidence, "probabilities": list(d.probabilities)}
        if with_box:
            out["box"] = list(d.box)
        if include_input:
            out["input"] = _png_data_url(d.image)
        return out

    if isinstance(reading, NumberReading):
        return {"number": reading.number,
                "low_confidence": any(d.low_confidence for d in reading.digits),
                "digits": [digit(d, True) for d in reading.digits]}
    return digit(reading, False)


class HttpApi:
    """`handle(request) -> (body, status, headers)` for functions-framework. `recognizer` is
    called per request and returns the loaded `Recognizer` (waiting for it on a cold start),
    or raises ModelUnavailable."""

    def __init__(self, recognizer: Callable[[], Recognizer], limits: Limits | None = None,
                 allowed_origins: str = "*", api_keys: tuple[str, ...] = ()):
        self.recognizer = recognizer
        self.limits = limits or Limits()
        self.allowed = [o.strip() for o in allowed_origins.split(",") if o.strip()] or ["*"]
        self._api_keys = tuple(k.encode() for k in api_keys if k)

    @classmethod
    def from_env(cls, recognizer: Callable[[], Recognizer]) -> HttpApi:
        """Limits, HDR_ALLOWED_ORIGINS and HDR_API_KEYS (comma-separated) from the
        environment."""
        keys = tuple(k.strip() for k in os.environ.get("HDR_API_KEYS", "").split(","))
        return cls(recognizer, Limits.from_env(), os.environ.get("HDR_ALLOWED_ORIGINS", "*"),
                   keys)

    def handle(self, request) -> tuple[str, int, dict]:
        headers = self._cors(request.headers.get("Origin"))
        try:
            if request.method == "OPTIONS":
                return "", 204, headers
            if request.method == "GET":
                return self._json(self._facts(self.recognizer()), 200, headers)
            if request.method != "POST":
                raise RequestError(405, f"method {request.method} is not allowed; use POST "
                                        "to predict or GET for health")
            self._check_key(request.headers.get("X-API-Key", ""))
            uploads, mode, include_input = self._read(request)
            body, status = self._predict(uploads, mode, include_input)
            return self._json(body, status, headers)
        except RequestError as e:
            return self._json({"error": str(e)}, e.status, headers)
        except ModelUnavailable as e:
            return self._json({"error": str(e)}, 503, headers)
        except Exception:  # A bug of ours: log it, answer without a trace.
            log.exception("unexpected error")
            return self._json({"error": "internal error"}, 500, headers)

    def _predict(self, uploads: list, mode: str, include_input: bool) -> tuple[dict, int]:
        """Reads every decodable upload in one batch; a bad one fails only its own slot."""
        raw: list[bytes | BadUpload] = []
        for item in uploads:
            try:
                raw.append(item if isinstance(item, bytes) else _b64_image(item))
            except BadUpload as e:
                raw.append(e)
        read = iter(self.recognizer().read([r for r in raw if isinstance(r, bytes)], mode))
        results = [r if isinstance(r, BadUpload) else next(read) for r in raw]
        if len(results) == 1 and isinstance(results[0], Exception):
            error = results[0]
            return {"error": str(error)}, _status_of(error)
        bodies = [{"error": str(r)} if isinstance(r, Exception) else
                  reading_json(r, include_input) for r in results]
        return (bodies[0] if len(bodies) == 1 else {"results": bodies}), 200

    def _facts(self, recognizer: Recognizer) -> dict:
        info = recognizer.info
        return {"status": "ok", "model": info.get("name", "hdr-jax"),
                "test_accuracy": info.get("test_accuracy"), "step": info.get("step"),
                "modes": list(MODES), "max_images": self.limits.max_images,
                "max_body_bytes": self.limits.max_body_bytes,
                "max_pixels": self.limits.max_pixels,
                "low_confidence_below": recognizer.low_confidence_below,
                "api_key_required": bool(self._api_keys)}

    def _check_key(self, given: str) -> None:
        if not self._api_keys:
            return
        # Compared with every key in constant time: no early exit tells which one was close.
        matches = [hmac.compare_digest(given.encode(), key) for key in self._api_keys]
        if not any(matches):
            raise RequestError(401, "missing or wrong API key: send it in the X-API-Key header")

    def _cors(self, origin: str | None) -> dict:
        if "*" in self.allowed:
            allow = "*"
        elif origin in self.allowed:
            allow = origin
        else:
            allow = self.allowed[0]
        return {"Access-Control-Allow-Origin": allow, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, X-API-Key",
                "Access-Control-Max-Age": "3600"}

    @staticmethod
    def _json(body: dict, status: int, headers: dict) -> tuple[str, int, dict]:
        return json.dumps(body), status, {**headers, "Content-Type": "application/json"}

    def _read(self, request) -> tuple[list, str, bool]:
        """(uploads: bytes or base64 strings, mode, include_input), or a RequestError."""
        length = request.content_length
        if length is not None and length > self.limits.max_body_bytes:
            raise RequestError(413, f"the request body is {length} bytes; the limit is "
                                    f"{self.limits.max_body_bytes}")
        ctype = (request.mimetype or "").lower()
        fields: dict = {}
        if ctype == "multipart/form-data":
            uploads, fields = self._multipart(request)
        elif ctype.startswith("image/"):
            uploads = [self._body(request)]
        elif ctype == "application/json":
            uploads, fields = self._json_body(request)
        else:
            raise RequestError(415, f"unsupported content type {ctype or '(none)'}; send "
                                    "multipart/form-data, image/* or application/json")
        self._check_count(len(uploads))
        mode = str(fields.get("mode") or request.args.get("mode") or "digit").lower()
        if mode not in MODES:
            raise RequestError(400, f"unknown mode {mode!r}; use 'digit' or 'number'")
        include = str(fields.get("include_input") or request.args.get("include_input") or "")
        return uploads, mode, include.lower() in ("1", "true", "yes", "on")

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_images:
            raise RequestError(413, f"{count} images; the limit is {self.limits.max_images} "
                                    "per request")

    def _multipart(self, request) -> tuple[list[bytes], dict]:
        body = self._body(request)
        boundary = parse_options_header(request.headers.get("Content-Type", ""))[1].get(
            "boundary", "")
        if not boundary:
            raise RequestError(400, "the multipart body has no boundary")
        # A few parts beyond the image limit for the form fields; more than that is too many
        # files, refused as such (413) before any image is decoded.
        parser = MultiPartParser(stream_factory=_memory_stream,
                                 max_form_parts=self.limits.max_images + 16)
        try:
            form, files = parser.parse(io.BytesIO(body), boundary.encode(), len(body))
        except RequestEntityTooLarge:
            raise RequestError(413, f"more than {self.limits.max_images} images; the limit is "
                                    f"{self.limits.max_images} per request") from None
        except Exception:
            raise RequestError(400, "the multipart body could not be read") from None
        uploads = [f.read() for f in files.getlist("image")]
        if not uploads:
            raise RequestError(400, "no file in the form field 'image'")
        return uploads, form

    def _json_body(self, request) -> tuple[list, dict]:
        try:
            payload = json.loads(self._body(request))
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "the body is not valid JSON") from None
        if not isinstance(payload, dict) or not ({"image", "images"} & payload.keys()):
            raise RequestError(400, "JSON must be {\"image\": ...} or {\"images\": [...]}")
        raw = payload["images"] if "images" in payload else [payload["image"]]
        if not isinstance(raw, list) or not raw:
            raise RequestError(400, "'images' must be a non-empty list")
        # Decoded per image, so one bad item fails only its slot.
        return raw, {k: v for k, v in payload.items() if k in ("mode", "include_input")}

    def _body(self, request) -> bytes:
        # Content-Length was checked already; this bounds a chunked body too.
        data = request.stream.read(self.limits.max_body_bytes + 1)
        if len(data) > self.limits.max_body_bytes:
            raise RequestError(413, f"the request body is larger than "
                                    f"{self.limits.max_body_bytes} bytes")
        return data
