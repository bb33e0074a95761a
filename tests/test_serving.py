"""The HTTP contract, through functions-framework's own app (create_app)."""

import base64
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.uploads import digit_upload, non_digit_upload, number_upload
from bench.uploads import png_bytes as _png
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def app(shipped_checkpoint):
    from functions_framework import create_app

    return create_app(target="predict", source=str(ROOT / "function" / "main.py"))


@pytest.fixture
def client(app):
    return app.test_client()


def _form(*files, **fields):
    data = {"image": [(io.BytesIO(raw), f"f{i}.png") for i, raw in enumerate(files)]}
    data.update(fields)
    return {"data": data, "content_type": "multipart/form-data"}


def _check_digit_answer(body: dict):
    assert set(body) >= {"digit", "confidence", "probabilities", "low_confidence"}
    assert body["low_confidence"] is (body["confidence"] < 0.6644)  # The shipped threshold.
    assert len(body["probabilities"]) == 10
    # The digits' share: the shipped model's 11th class, "not one digit", takes the rest.
    assert body["confidence"] - 1e-5 <= sum(body["probabilities"]) <= 1.0 + 1e-4  # (Rounded.)
    assert body["confidence"] == pytest.approx(max(body["probabilities"]), abs=1e-6)
    assert body["digit"] == int(np.argmax(body["probabilities"]))


def test_get_is_health_with_model_facts(client):
    r = client.get("/")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["test_accuracy"] > 0.99 and body["step"] > 0
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_options_is_a_cors_preflight(client):
    r = client.options("/", headers={"Origin": "https://example.org",
                                     "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type, X-API-Key"


def _request(method: str = "POST", **kwargs):
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    return Request(EnvironBuilder(method=method, **kwargs).get_environ())


def _unavailable():
    from hdr_jax.serving import ModelUnavailable

    raise ModelUnavailable("the model could not be loaded: no checkpoint at /nowhere")


def test_allowed_origins_come_from_the_environment(monkeypatch):
    from hdr_jax.serving import HttpApi

    monkeypatch.setenv("HDR_ALLOWED_ORIGINS", " https://a.example, https://b.example ,")
    api = HttpApi.from_env(_unavailable)
    for origin, allowed in (("https://b.example", "https://b.example"),
                            ("https://evil.example", "https://a.example")):
        _, status, headers = api.handle(_request("OPTIONS", headers={"Origin": origin}))
        assert status == 204 and headers["Access-Control-Allow-Origin"] == allowed


def test_a_model_that_failed_to_load_answers_503_with_cors_headers(monkeypatch):
    from hdr_jax.serving import HttpApi

    monkeypatch.setenv("HDR_ALLOWED_ORIGINS", "https://a.example")
    api = HttpApi.from_env(_unavailable)
    for method in ("GET", "POST"):
        body, status, headers = api.handle(_request(
            method, headers={"Origin": "https://a.example"}, data=b"x",
            content_type="image/png"))
        assert status == 503 and "could not be loaded" in json.loads(body)["error"]
        assert headers["Access-Control-Allow-Origin"] == "https://a.example"


def test_api_keys_guard_predictions_but_not_health_or_preflight(monkeypatch, caplog,
                                                                 shipped_checkpoint,
                                                                 real_mnist):
    from hdr_jax.lifecycle import ColdStart
    from hdr_jax.serving import HttpApi

    monkeypatch.setenv("HDR_API_KEYS", "k-one-1234, k-two-5678")
    api = HttpApi.from_env(ColdStart().get)
    raw = _png(real_mnist.test.images[0])
    post = lambda **headers: api.handle(_request(data=raw, content_type="image/png",
                                                 headers=headers))
    for headers in ({}, {"X-API-Key": "k-one"}, {"X-API-Key": "wrong"}):
        body, status, cors = post(**headers)
        assert status == 401 and "API key" in json.loads(body)["error"]
        assert cors["Access-Control-Allow-Origin"] == "*"
    for key in ("k-one-1234", "k-two-5678"):
        body, status, _ = post(**{"X-API-Key": key})
        assert status == 200 and json.loads(body)["digit"] == 7
    _, status, _ = api.handle(_request("GET"))
    assert status == 200
    assert api.handle(_request("OPTIONS"))[1] == 204
    assert "k-one-1234" not in caplog.text and "k-two-5678" not in caplog.text


def test_multipart_one_digit(client, real_mnist):
    r = client.post("/", **_form(_png(real_mnist.test.images[0])))
    assert r.status_code == 200
    body = r.get_json()
    _check_digit_answer(body)
    assert body["digit"] == real_mnist.test.labels[0] == 7
    assert "box" not in body and "input" not in body


def test_raw_body_and_json_forms(client, real_mnist):
    raw = _png(real_mnist.test.images[1])
    label = int(real_mnist.test.labels[1])
    r = client.post("/", data=raw, content_type="image/png")
    assert r.status_code == 200 and r.get_json()["digit"] == label
    b64 = base64.b64encode(raw).decode()
    for payload in ({"image": b64}, {"image": "data:image/png;base64," + b64}):
        r = client.post("/", json=payload)
        assert r.status_code == 200 and r.get_json()["digit"] == label
    r = client.post("/", json={"images": [b64, b64, "@@@"]})
    results = r.get_json()["results"]
    assert r.status_code == 200 and [x.get("digit") for x in results[:2]] == [label, label]
    assert "base64" in results[2]["error"]


def test_number_mode_by_form_field_and_query(client, real_mnist):
    rng = np.random.default_rng(5)
    idx = [3, 2, 1, 18]
    raw = number_upload([real_mnist.test.images[i] for i in idx], rng)
    expected = "".join(str(real_mnist.test.labels[i]) for i in idx)
    for kwargs in ({"mode": "number"},):
        r = client.post("/", **_form(raw, **kwargs))
        body = r.get_json()
        assert r.status_code == 200, body
        assert body["number"] == expected
        assert len(body["digits"]) == 4
        xs = [d["box"][0] for d in body["digits"]]
        assert xs == sorted(xs)
        for d in body["digits"]:
            _check_digit_answer(d)
    r = client.post("/?mode=number", data=raw, content_type="image/jpeg")
    assert r.get_json()["number"] == expected


def test_many_files_in_order_and_a_bad_one_fails_only_its_slot(client, real_mnist):
    files = [_png(img) for img in real_mnist.test.images[:128]]
    files[5] = b"not an image"
    r = client.post("/", **_form(*files))
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert len(results) == 128
    assert "error" in results[5] and "status" not in results[5]
    digits = [x.get("digit") for i, x in enumerate(results) if i != 5]
    labels = [int(v) for i, v in enumerate(real_mnist.test.labels[:128]) if i != 5]
    assert np.mean(np.array(digits) == np.array(labels)) >= 0.99


def test_include_input_returns_the_28x28_image_the_model_saw(client, real_mnist):
    r = client.post("/?include_input=1", **_form(_png(real_mnist.test.images[0])))
    url = r.get_json()["input"]
    assert url.startswith("data:image/png;base64,")
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    np.testing.assert_array_equal(seen, real_mnist.test.images[0])


@pytest.mark.parametrize("kwargs, status, fragment", [
    ({"data": b"hello", "content_type": "image/png"}, 400, "not an image"),
    ({"data": b"%PDF-1.7\n%\xe2\xe3", "content_type": "image/png"}, 400, "not an image"),
    ({"data": b"<svg xmlns='http://www.w3.org/2000/svg'/>", "content_type": "image/svg+xml"},
     400, "not an image"),
    ({"json": {"image": "!!notbase64"}}, 400, "base64"),
    ({"json": {"picture": "x"}}, 400, "JSON must be"),
    ({"data": b"{not json", "content_type": "application/json"}, 400, "not valid JSON"),
    ({"data": b"hello", "content_type": "text/plain"}, 415, "unsupported content type"),
    ({"data": b"x", "content_type": "multipart/form-data; boundary=zz"}, 400, "multipart"),
])
def test_bad_requests_get_a_clear_4xx(client, kwargs, status, fragment):
    r = client.post("/", **kwargs)
    assert r.status_code == status
    assert fragment in r.get_json()["error"]


def test_unknown_mode_truncated_blank_and_methods(client, real_mnist):
    raw = _png(real_mnist.test.images[0])
    r = client.post("/?mode=letters", data=raw, content_type="image/png")
    assert r.status_code == 400 and "unknown mode" in r.get_json()["error"]
    r = client.post("/", data=raw[: len(raw) // 2], content_type="image/png")
    assert r.status_code == 400
    r = client.post("/", data=_png(np.full((50, 50), 255, np.uint8)), content_type="image/png")
    assert r.status_code == 422 and "no digit found" in r.get_json()["error"]
    qr = non_digit_upload("qr", np.random.default_rng(3))
    r = client.post("/", data=qr, content_type="image/jpeg")
    assert r.status_code == 422 and "not handwriting" in r.get_json()["error"]
    for method in ("put", "delete", "patch"):
        r = getattr(client, method)("/")
        assert r.status_code == 405 and "not allowed" in r.get_json()["error"]


def test_size_limits_are_413(client, monkeypatch, app):
    import zlib

    png = bytearray(_png(np.zeros((1, 1), np.uint8)))
    png[16:24] = (30000).to_bytes(4, "big") * 2
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    r = client.post("/", data=bytes(png), content_type="image/png")
    assert r.status_code == 413 and "pixels" in r.get_json()["error"]
    big = b"\x00" * (10 * 1024 * 1024 + 1)
    r = client.post("/", data=big, content_type="image/png")
    assert r.status_code == 413 and "limit" in r.get_json()["error"]
    for count in (257, 272, 273, 400):  # 273 and more used to trip the parser first (400).
        r = client.post("/", **_form(*[b"x"] * count))
        assert r.status_code == 413, count
        assert "the limit is 256 per request" in r.get_json()["error"]


def test_readings_below_the_checkpoints_threshold_are_flagged_low_confidence(
        shipped_checkpoint, real_mnist):
    from hdr_jax.inference import Predictor
    from hdr_jax.recognition import Recognizer

    predictor = Predictor.from_checkpoint(shipped_checkpoint)
    assert predictor.info["calibration"]["low_confidence_below"] == 0.6644
    raws = [_png(img) for img in real_mnist.test.images[:20]]
    readings = Recognizer(predictor).read(raws)
    confidences = [r.confidence for r in readings]
    for threshold in (0.0, float(np.median(confidences)), 1.01):
        predictor.info["calibration"]["low_confidence_below"] = threshold
        flags = [r.low_confidence for r in Recognizer(predictor).read(raws)]
        assert flags == [c < threshold for c in confidences]
    from hdr_jax.serving import reading_json

    number = reading_json(Recognizer(predictor).read(
        [number_upload(list(real_mnist.test.images[:3]), np.random.default_rng(1))],
        mode="number")[0])
    assert number["low_confidence"] is True  # Threshold 1.01: every digit is doubtful.
    assert all(d["low_confidence"] for d in number["digits"])


def test_prediction_log_keeps_hashes_not_images(tmp_path, real_mnist):
    import hashlib

    from hdr_jax.inference import Predictor
    from hdr_jax.lifecycle import checkpoint_path
    from hdr_jax.recognition import Recognizer

    log = tmp_path / "predictions.jsonl"
    recognizer = Recognizer(Predictor.from_checkpoint(checkpoint_path()), prediction_log=str(log))
    raw = _png(real_mnist.test.images[0])
    recognizer.read([raw, raw], mode="digit")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert lines[0]["result"]["digit"] == 7 and "probabilities" not in lines[0]["result"]
    assert base64.b64encode(raw).decode()[:40] not in log.read_text()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=2048), ctype=st.sampled_from(
    ["image/png", "image/jpeg", "application/json", "multipart/form-data; boundary=b",
     "text/plain", "application/octet-stream", ""]))
def test_fuzz_random_bodies_never_5xx(app, body, ctype):
    r = app.test_client().post("/", data=body, content_type=ctype)
    assert 200 <= r.status_code < 500, r.get_data()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_images_never_5xx(app, data):
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    image = (rng.random((28, 28)) * 255).astype(np.uint8)
    fmt = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt)
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    r = app.test_client().post("/", data=bytes(raw[:cut]), content_type="image/png")
    assert 200 <= r.status_code < 500, r.get_data()


@pytest.mark.slow
def test_mnist_test_set_over_http_equals_offline_evaluation(client, real_mnist,
                                                              shipped_checkpoint):
    from hdr_jax.inference import Predictor

    offline = Predictor.from_checkpoint(shipped_checkpoint).predict(  # Of the 10 digits.
        real_mnist.test.images.astype(np.float32) / 255.0)[:, :10].argmax(-1)
    served = []
    for start in range(0, 10000, 128):
        batch = [_png(img) for img in real_mnist.test.images[start:start + 128]]
        r = client.post("/", **_form(*batch))
        served += [x["digit"] for x in r.get_json()["results"]]
    served = np.array(served)
    np.testing.assert_array_equal(served, offline)
    info = json.loads((shipped_checkpoint / "info.json").read_text())
    assert np.mean(served == real_mnist.test.labels) == pytest.approx(info["test_accuracy"])


@pytest.mark.slow
def test_realistic_uploads_are_read_correctly(client, real_mnist):
    rng = np.random.default_rng(123)
    for style in ("photo", "transparent", "screenshot", "offcentre"):
        idx = rng.integers(0, 10000, 60)
        files = [digit_upload(real_mnist.test.images[i], style, rng) for i in idx]
        r = client.post("/", **_form(*files))
        got = np.array([x.get("digit", -1) for x in r.get_json()["results"]])
        assert np.mean(got == real_mnist.test.labels[idx]) >= 0.95, style


def test_realistic_numbers_are_read_correctly(client, real_mnist):
    """Numbers of 2-6 digits photographed on paper, as one batch in number mode: the issue's
    96% target (these 100, seeded, read 99% right; the benchmark's 500 read 97.6%)."""
    rng = np.random.default_rng(321)
    files, expected = [], []
    for _ in range(100):
        idx = rng.integers(0, 10000, int(rng.integers(2, 7)))
        files.append(number_upload([real_mnist.test.images[i] for i in idx], rng))
        expected.append("".join(str(real_mnist.test.labels[i]) for i in idx))
    r = client.post("/", **_form(*files, mode="number"))
    assert r.status_code == 200
    got = [x.get("number") for x in r.get_json()["results"]]
    assert np.mean([g == e for g, e in zip(got, expected, strict=True)]) >= 0.96


def test_cold_start_compiles_batch_one_first_and_the_rest_after_the_first_answer(
        shipped_checkpoint):
    import time

    from hdr_jax.lifecycle import create_recognizer

    recognizer = create_recognizer(idle_seconds=600)
    predictor = recognizer.predictor
    assert predictor.compiled() == [1]  # The rest waits for the first answer.
    recognizer.read([_png(np.pad(np.full((20, 6), 255, np.uint8), ((4, 4), (11, 11))))])
    deadline = time.monotonic() + 300
    while predictor.compiled() != list(predictor.buckets) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert predictor.compiled() == [1, 8, 32, 128]
