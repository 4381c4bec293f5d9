"""`nettlege serve --workers 2`: two processes on consecutive ports that share Redis and secrets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from load_tests.harness import free_port, redis_server


def _two_free_ports() -> int:
    """A port P with P+1 free too (the workers take consecutive ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two consecutive free ports")


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


@pytest.fixture
def two_workers(tmp_path) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    config = tmp_path / "n.toml"
    config.write_text('[[tenants]]\nid = "oslo"\nname = "Oslo"\n[[tenants.services]]\nid = "nettlege"\n'
                      'name = "Nettlege"\nopening_hours = { default = "24/7" }\n')
    port = _two_free_ports()
    with redis_server() as redis_url:
        env = {**os.environ, "REDIS_URL": redis_url, "NETTLEGE_ENV": "development", "NETTLEGE_LOG_LEVEL": "WARNING"}
        for key in ("NETTLEGE_SECRET_KEY", "NETTLEGE_CHAT_MASTER_KEY"):
            env.pop(key, None)  # generated once by the supervisor and handed to both workers
        proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
                                 "--port", str(port), "--workers", "2"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            first, second = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
            _wait_http(first + "/healthz")
            _wait_http(second + "/healthz")
            yield first, second
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "2 workers" in out


async def test_workers_share_tokens_and_state(two_workers):
    first, second = two_workers
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{first}/api/v1/dev/token", json={"sub": "kari", "role": "citizen",
                                                                 "tenant": "oslo", "name": "Kari"}) as r:
            token = (await r.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{first}/api/v1/tenants/oslo/services/nettlege/queue",
                             json={"channel": "chat", "reason": "hoste"}, headers=auth) as r:
            ticket = (await r.json())["ticket_id"]
        # the other worker accepts the token and sees the same queue
        async with http.get(f"{second}/api/v1/tickets/{ticket}", headers=auth) as r:
            assert r.status == 200 and (await r.json())["position"] == 1
