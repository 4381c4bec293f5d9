"""`nettlege serve` as a newcomer meets it: it says it runs only once it listens, and a taken port is one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

NETTLEGE = Path(sys.executable).parent / "nettlege"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "NETTLEGE_"))}
    env["NETTLEGE_GC_TUNING"] = "0"
    return env


def test_a_taken_port_is_one_line_naming_the_port_and_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([str(NETTLEGE), "serve", "--port", str(port)], env=_env(), capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert "nettlege is running" not in done.stdout
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "NETTLEGE_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_running_is_announced_once_the_port_answers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(NETTLEGE), "serve", "--port", str(port)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the announcement (or exit)
        assert line.startswith(f"nettlege is running: open http://127.0.0.1:{port}/"), line
        # Announced after binding: the very next request is answered.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(15)
