"""Real local servers for tests and benchmarks: started as subprocesses, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    """Seconds until `url` answers 200; raises if the process dies or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def running(command: list[str], port: int, env: dict | None = None, path: str = "/",
            cwd: Path = ROOT, inherit_env: bool = True):
    full_env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    proc = subprocess.Popen(command, cwd=cwd, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}{path}", proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def function_command(port: int, source: Path = ROOT / "function" / "main.py") -> list[str]:
    """The documented way to run the function locally (functions-framework's own server)."""
    exe = Path(sys.executable).with_name("functions-framework")
    return [str(exe), "--source", str(source), "--target", "predict", "--host", "127.0.0.1",
            "--port", str(port)]
