"""The function behind functions-framework's real server, over loopback."""

import os
import threading
import time

import psutil
import pytest
import requests

from bench.servers import free_port, function_command, running
from bench.uploads import png_bytes as _png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(shipped_checkpoint):
    port = free_port()
    with running(function_command(port), port,
                 env={"HDR_CHECKPOINT": str(shipped_checkpoint)}) as proc:
        yield f"http://127.0.0.1:{port}/", proc


def test_contract_over_a_real_socket(server, real_mnist):
    url, _ = server
    health = requests.get(url, timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    r = requests.post(url, files={"image": ("a.png", _png(real_mnist.test.images[0]))},
                      data={"mode": "digit"}, timeout=10)
    assert r.status_code == 200 and r.json()["digit"] == 7
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = requests.post(url, data=b"hi", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415 and r.headers["Content-Type"] == "application/json"
    assert requests.put(url, timeout=10).status_code == 405
    assert requests.options(url, timeout=10).status_code == 204


def test_load_concurrency_8_zero_errors_no_memory_growth(server, real_mnist):
    url, proc = server
    seconds = float(os.environ.get("HDR_LOAD_SECONDS", "60"))
    bodies = [_png(img) for img in real_mnist.test.images[:64]]
    server_proc = psutil.Process(proc.pid)

    def rss() -> int:
        procs = [server_proc, *server_proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs)

    def hammer(until, counts):
        session = requests.Session()
        i = 0
        while time.perf_counter() < until:
            r = session.post(url, data=bodies[i % len(bodies)],
                             headers={"Content-Type": "image/png"}, timeout=30)
            counts["ok" if r.status_code == 200 else "bad"] += 1
            i += 1

    warm = {"ok": 0, "bad": 0}
    hammer(time.perf_counter() + 3, warm)  # Warm-up: allocator and caches settle.
    before = rss()
    counts = [{"ok": 0, "bad": 0} for _ in range(8)]
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=hammer, args=(until, c)) for c in counts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = rss()
    total = sum(c["ok"] for c in counts)
    assert sum(c["bad"] for c in counts) == 0
    assert total > 8 * seconds  # More than one request per second per client, at least.
    growth_mib = (after - before) / 2**20
    assert growth_mib < 64, f"RSS grew {growth_mib:.0f} MiB over {total} requests"


def test_serve_py_runs_the_production_gunicorn_server_not_flasks(shipped_checkpoint):
    """An arbiter and one forked worker, as functions-framework runs the function; never
    Flask's development server and its warning."""
    import subprocess
    import sys

    from bench.servers import wait_ready
    from tests.conftest import ROOT

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--port", str(port)],
                            cwd=ROOT, env={**os.environ, "HDR_CHECKPOINT": str(shipped_checkpoint)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
        page = requests.get(f"http://127.0.0.1:{port}/web/", timeout=10)
        assert page.status_code == 200 and "<title>hdr-jax" in page.text
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 1, workers
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "development server" not in stderr
