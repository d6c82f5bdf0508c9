"""Servers in processes of their own, for tests that kill, restart or share them: a free port, and
the kiosk as in production (`flask --app kiosk serve`), ready when it answers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment plus SETTINGS, with the project importable (an existing
    PYTHONPATH, such as the faketime pass's, is kept after it)."""
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path, **settings}


def start_kiosk(env: dict[str, str], port: int, log: Path, timeout: float = 30) -> subprocess.Popen:
    """`flask --app kiosk serve` on PORT with ENV, once it answers; its output is appended to LOG,
    which the error quotes when it does not start."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "serve", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the kiosk did not start: {log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/services", timeout=5).status_code == 200:
                return proc
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a loaded machine
            time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"the kiosk did not answer within {timeout:.0f} s: "
                         f"{log.read_text(errors='replace')[-2000:]}")
