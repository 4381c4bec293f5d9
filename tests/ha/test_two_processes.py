"""The failover scenario with two `nettlege serve` processes on one Sentinel-watched Redis: the doctor chats
through one process, the citizen through the other; kill -9 of the primary mid-stream."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chat.conftest import ORIGIN, connect, consultation
from tests.conftest import TEST_TENANTS, dev_token

from .conftest import MASTER_KEY, failovers_seen, full_history, in_thread
from .test_sentinel_failover import KILL_AFTER, chatter, check_history, queue_tickets, take_all, until_ok
from .topology import SentinelSet, free_port, wait_until


class Rest:
    """Just enough of aiohttp's TestClient (`post`, `get` on a path) for the shared helpers."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    def post(self, path: str, **kw: Any) -> Any:
        return self.http.post(self.base + path, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(self.base + path, **kw)


@pytest.fixture
def two_processes(sentinels: SentinelSet, tmp_path: Path) -> Iterator[list[str]]:
    config = tmp_path / "nettlege.toml"
    config.write_text(TEST_TENANTS)
    env = {**os.environ, **sentinels.env(), "REDIS_MIN_REPLICAS_ACK": "1", "REDIS_WAIT_TIMEOUT_MS": "2000",
           "NETTLEGE_ENV": "test", "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY,
           "NETTLEGE_SECRET_KEY": "test-secret-key-with-enough-length-0123456789",
           "NETTLEGE_AUDIT_KEY": secrets.token_urlsafe(32), "NETTLEGE_ALLOWED_ORIGINS": ORIGIN,
           "NETTLEGE_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
                               "--port", str(p)], env=env, stdout=subprocess.DEVNULL) for p in ports]
    try:
        import urllib.request

        for p in ports:
            wait_until(lambda p=p: urllib.request.urlopen(f"http://127.0.0.1:{p}/readyz", timeout=1).status == 200,
                       60, f"nettlege serve on {p}", 0.1)
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.timeout(400)
async def test_failover_with_two_processes(sentinels: SentinelSet, two_processes: list[str]):
    async with aiohttp.ClientSession() as http:
        a, b = (Rest(http, u) for u in two_processes)
        pair = await consultation(a)
        doctor, citizen = await connect(two_processes[0], pair.doctor), await connect(two_processes[1], pair.citizen)
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        waiting = await queue_tickets(b, 10)

        acked: dict[str, list[dict]] = {"lege": [], "pasient": []}
        halves = [asyncio.Event(), asyncio.Event()]
        senders = [asyncio.create_task(chatter(doctor, pair.cid, "lege", acked["lege"], halves[0])),
                   asyncio.create_task(chatter(citizen, pair.cid, "pasient", acked["pasient"], halves[1]))]
        await asyncio.wait_for(asyncio.gather(*(h.wait() for h in halves)), 60)
        assert all(len(v) >= KILL_AFTER for v in acked.values())

        victim = await in_thread(sentinels.kill_primary)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        acked_before_kill = {k: len(v) for k, v in acked.items()}

        async def chat_back() -> bool:
            return all(len(v) > acked_before_kill[k] for k, v in acked.items())
        await until_ok(chat_back, 15 - (loop.time() - killed_at), "chat on both processes")
        probe = await dev_token(a, "probe", "citizen")

        async def rest_back() -> bool:
            for rest in (a, b):
                r = await rest.post("/api/v1/tenants/oslo/services/legevakt/queue",
                                    json={"channel": "chat", "reason": "r"},
                                    headers={"Authorization": f"Bearer {probe}"})
                if r.status not in (201, 409):
                    return False
            return True
        await until_ok(rest_back, 15 - (loop.time() - killed_at), "REST on both processes")

        await asyncio.wait_for(asyncio.gather(*senders), 120)
        await in_thread(sentinels.wait_failover, victim.port)
        taken = await take_all(a, pair.doctor)
        assert Counter(taken) == Counter(waiting)
        check_history(await full_history(doctor, pair.cid), acked)
        check_history(await full_history(citizen, pair.cid), acked)
        for rest in (a, b):
            assert (await rest.get("/readyz")).status == 200
            assert failovers_seen(await (await rest.get("/metrics")).text()) >= 1
        for c in (doctor, citizen):
            await c.close()
