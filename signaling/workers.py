"""`nettlege serve --workers N`: N server processes on consecutive ports sharing one Redis.

One Python process uses one core, so a node spreads over processes. Each worker is a full node
(REST, chat, signaling) with its own address; a consultation's media lives on one of them (see
placement.py) and clients are pointed there. The supervisor restarts a worker that dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .config import Config

RESTART_DELAY_S = 1.0


def _spawn(argv: list[str], port: int, config: Config) -> subprocess.Popen[bytes]:
    # Secrets go to every worker: a token signed by one must verify on the others, and chat written under
    # one worker's master key must read on the others, and the audit seal of one must verify on the others
    # (outside production they may be generated values).
    env = {**os.environ, "NETTLEGE_NODE_URL": f"http://{config.host}:{port}",
           "NETTLEGE_PUBLIC_URL": config.public_url or f"http://{config.host}:{config.port}",
           "NETTLEGE_SECRET_KEY": config.secret_key or "", "NETTLEGE_CHAT_MASTER_KEY": config.chat_master_key or "",
           "NETTLEGE_AUDIT_KEY": config.audit_key or ""}
    return subprocess.Popen([sys.executable, "-m", "signaling.cli", *argv, "--port", str(port)], env=env)


def supervise(config: Config, workers: int, argv: list[str]) -> int:
    """Run `workers` processes on ports port..port+workers-1 until SIGINT/SIGTERM."""
    ports = [config.port + i for i in range(workers)]
    procs = {port: _spawn(argv, port, config) for port in ports}
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"nettlege: {workers} workers on ports {ports[0]}-{ports[-1]}", flush=True)
    while not stopping:
        time.sleep(0.5)
        for port, proc in list(procs.items()):
            if proc.poll() is not None and not stopping:
                print(f"nettlege: worker on port {port} exited ({proc.returncode}); restarting", flush=True)
                time.sleep(RESTART_DELAY_S)
                procs[port] = _spawn(argv, port, config)
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0
