"""hdr_jax/webpage.py: the model and the pinned runtime put beside the page."""

import io
import json
import tarfile

import pytest

from hdr_jax import webpage
from hdr_jax.browser import BROWSER_MODEL


def test_install_model_copies_the_browser_model_and_writes_its_facts(tmp_path,
                                                                     shipped_checkpoint):
    target = webpage.install_model(shipped_checkpoint, tmp_path)
    shipped = (shipped_checkpoint / BROWSER_MODEL).read_bytes()
    assert (target / BROWSER_MODEL).read_bytes() == shipped
    facts = json.loads((target / "model.json").read_text())
    info = json.loads((shipped_checkpoint / "info.json").read_text())
    assert facts["low_confidence_below"] == info["calibration"]["low_confidence_below"]
    assert facts["test_accuracy"] == info["test_accuracy"] and facts["step"] == info["step"]
    version = webpage.RUNTIME_VERSION
    assert facts["runtime_path"] == f"vendor/onnxruntime-web-{version}/"
    assert facts["runtime_files"] == [f"vendor/onnxruntime-web-{version}/{name}"
                                      for name in webpage.RUNTIME_FILES]


def _tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(f"package/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_a_runtime_that_does_not_match_its_published_hash_is_refused(tmp_path, monkeypatch):
    fake = _tarball({f"dist/{name}": b"evil" for name in webpage.RUNTIME_FILES})
    registry = tmp_path / "registry"
    path = registry / webpage.RUNTIME / "-" / f"{webpage.RUNTIME}-{webpage.RUNTIME_VERSION}.tgz"
    path.parent.mkdir(parents=True)
    path.write_bytes(fake)
    monkeypatch.setattr(webpage, "REGISTRY", registry.as_uri())
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / path.name).write_bytes(fake)  # A tampered cache is not trusted either.
    web = tmp_path / "web"
    web.mkdir()
    with pytest.raises(webpage.WebpageError, match="does not match its published SHA-512"):
        webpage.vendor_runtime(web, cache)
    assert list(web.iterdir()) == []  # Nothing written beside the page.


def test_a_runtime_already_in_place_is_kept_without_the_network(tmp_path, monkeypatch):
    target = webpage.runtime_dir(tmp_path)
    target.mkdir(parents=True)
    for name in webpage.RUNTIME_FILES:
        (target / name).write_bytes(b"kept")
    (target / "VERSION").write_text(webpage.RUNTIME_VERSION + "\n")
    monkeypatch.setattr(webpage, "REGISTRY", "http://127.0.0.1:9")  # Nothing listens.
    assert webpage.vendor_runtime(tmp_path, tmp_path / "cache") == target
    assert (target / webpage.RUNTIME_FILES[0]).read_bytes() == b"kept"


def test_the_command_line_says_what_is_missing_in_one_line(tmp_path, capsys):
    assert webpage.main(["--checkpoint", str(tmp_path / "none"), "--web", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
