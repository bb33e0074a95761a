"""The deployable folder serves from a fresh virtualenv installed only from its requirements."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import requests
from PIL import Image

from bench.servers import free_port, running
from hdr_jax import deploy


def test_build_refuses_a_damaged_checkpoint(tmp_path):
    (tmp_path / "ck").mkdir()
    assert deploy.main(["--out", str(tmp_path / "out"), "--checkpoint",
                        str(tmp_path / "ck")]) == 2
    assert not (tmp_path / "out").exists()


def test_build_never_deletes_a_folder_it_did_not_make(tmp_path, shipped_checkpoint, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert deploy.main(["--out", str(precious), "--checkpoint", str(shipped_checkpoint)]) == 2
    assert (precious / "thesis.tex").read_text() == "years of work"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not made by this command" in err[0]
    out = tmp_path / "function"
    deploy.build(out, shipped_checkpoint)
    deploy.build(out, shipped_checkpoint)  # Its own folder: replaced.
    assert (out / deploy.MARKER).is_file() and (out / "main.py").is_file()


@pytest.mark.slow
def test_built_folder_serves_from_a_fresh_virtualenv(tmp_path, shipped_checkpoint):
    out = deploy.build(tmp_path / "function", shipped_checkpoint)
    assert {p.name for p in out.iterdir()} == {"main.py", "requirements.txt", "hdr_jax",
                                               "checkpoint", deploy.MARKER}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r",
                          str(out / "requirements.txt")], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDR_", "PYTHON"))}
    command = [str(venv / "bin" / "functions-framework"), "--source", "main.py", "--target",
               "predict", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, port, env=env, cwd=out, inherit_env=False):
        health = requests.get(f"http://127.0.0.1:{port}/", timeout=30).json()
        assert health["step"] > 0
        image = np.zeros((28, 28), np.uint8)
        image[4:24, 13:16] = 255  # A "1".
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "PNG")
        r = requests.post(f"http://127.0.0.1:{port}/", data=buf.getvalue(),
                          headers={"Content-Type": "image/png"}, timeout=30)
        assert r.status_code == 200 and r.json()["digit"] == 1
