"""More than one server process, and a Redis restart: delivery rests on the stream, not on pub/sub."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chat.conftest import ORIGIN, Client, base_url, connect, consultation, start_app
from tests.conftest import TEST_TENANTS

MASTER_KEY = base64.b64encode(b"m" * 32).decode()  # every process of a deployment shares it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, wait_s: float = 20) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


class AofRedis:
    """A private redis-server with AOF fsync on every write, which can be killed and started again."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no shutdown save: only what AOF already has survives
        self.proc.wait(10)


@pytest.fixture
def aof_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = AofRedis(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait(10)


async def _send_until_stored(client: Client, cid: str, text: str, client_id: str, wait_s: float = 20) -> dict:
    """What a client does: retry with the same client_id until the server acks."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            ack = await client.send(cid, text, client_id=client_id)
            if ack["ok"]:
                return ack
            assert ack["error"] in ("unavailable", "internal"), ack
        except TimeoutError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("never acked")
        await asyncio.sleep(0.2)


async def _until_nodes_linked(a: Client, b: Client, cid: str, wait_s: float = 15) -> None:
    """Each node's AsyncRedisManager subscribes on its first connection, in the background: until then a
    broadcast from the other node is not seen (the stream still has it). Typing goes the same way as messages,
    so A types until B sees it -- in both directions."""
    for x, y in ((a, b), (b, a)):
        deadline = time.monotonic() + wait_s
        while not y.got("typing"):
            assert time.monotonic() < deadline, "nodes never linked through Redis"
            await x.call("typing", {"consultation_id": cid, "typing": True})
            await asyncio.sleep(0.35)


async def test_redis_restart_between_two_messages_loses_nothing_acked(make_config, aof_redis):
    app = await start_app(make_config(redis_url=aof_redis.url, allowed_origins=[ORIGIN],
                                      chat_master_key=MASTER_KEY))
    try:
        pair = await consultation(app)
        url = base_url(app)
        doctor = await connect(url, pair.doctor)
        citizen = await connect(url, pair.citizen)
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        first = await citizen.send(pair.cid, "før omstart", client_id="one")
        assert first["ok"]
        aof_redis.kill()
        down = await citizen.send(pair.cid, "mens Redis er borte", client_id="two")
        assert down["ok"] is False and down["error"] == "unavailable"  # not acked, so the client retries
        aof_redis.start()
        second = await _send_until_stored(citizen, pair.cid, "mens Redis er borte", "two")
        history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert [(m["id"], m["text"]) for m in history["messages"]] == [(first["id"], "før omstart"),
                                                                       (second["id"], "mens Redis er borte")]
        # A retry of the first message after the restart is still recognised as the same message.
        assert (await citizen.send(pair.cid, "før omstart", client_id="one"))["id"] == first["id"]
        await doctor.close()
        await citizen.close()
    finally:
        await app.close()


async def test_two_apps_sharing_redis_deliver_across_nodes(make_config, redis_url):
    from rooms.store import connect as redis_connect

    r = redis_connect(redis_url)
    await r.flushdb()
    await r.aclose()
    config = make_config(allowed_origins=[ORIGIN], chat_master_key=MASTER_KEY)
    node_a, node_b = await start_app(config), await start_app(config)
    try:
        pair = await consultation(node_a)
        doctor = await connect(base_url(node_a), pair.doctor)
        citizen = await connect(base_url(node_b), pair.citizen)
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        await _until_nodes_linked(doctor, citizen, pair.cid)
        ack = await doctor.send(pair.cid, "fra node A")
        [msg] = await citizen.wait_for("message")
        assert msg["id"] == ack["id"] and msg["text"] == "fra node A"
        ack = await citizen.send(pair.cid, "fra node B")
        assert [m["id"] for m in await doctor.wait_for("message")] == [ack["id"]]  # no echo to the sender
        await doctor.close()
        await citizen.close()
    finally:
        await node_a.close()
        await node_b.close()


@pytest.fixture
def serve_processes(tmp_path: Path, redis_url: str):  # type: ignore[no-untyped-def]
    """Two `nettlege serve` processes with REDIS_URL set, on one real Redis; yields their base URLs."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    config = tmp_path / "nettlege.toml"
    config.write_text(TEST_TENANTS)
    env = {**os.environ, "REDIS_URL": redis_url, "NETTLEGE_ENV": "test", "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY,
           "NETTLEGE_SECRET_KEY": "test-secret-key-with-enough-length-0123456789",
           "NETTLEGE_ALLOWED_ORIGINS": ORIGIN, "NETTLEGE_LOG_LEVEL": "WARNING"}
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
                               "--port", str(p)], env=env, stdout=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            _wait_port(p, 30)
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


async def test_two_nettlege_serve_processes_deliver_across_processes(serve_processes):
    import aiohttp

    urls = serve_processes
    async with aiohttp.ClientSession() as http:
        async def token(sub: str, role: str) -> str:
            async with http.post(urls[0] + "/api/v1/dev/token",
                                 json={"sub": sub, "role": role, "tenant": "oslo", "name": sub}) as resp:
                return (await resp.json())["token"]
        citizen_t, doctor_t = await token("c", "citizen"), await token("d", "clinician")
        async with http.post(urls[1] + "/api/v1/tenants/oslo/services/nettlege/queue",
                             json={"channel": "chat", "reason": "r"},
                             headers={"Authorization": f"Bearer {citizen_t}"}) as resp:
            assert resp.status == 201
        async with http.post(urls[0] + "/api/v1/tenants/oslo/services/nettlege/queue/take",
                             headers={"Authorization": f"Bearer {doctor_t}"}) as resp:
            cid = (await resp.json())["consultation_id"]
    doctor = await connect(urls[0], doctor_t)
    citizen = await connect(urls[1], citizen_t)
    try:
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": cid}))["ok"]
        await _until_nodes_linked(doctor, citizen, cid)
        ack = await doctor.send(cid, "over prosessgrensen")
        [msg] = await citizen.wait_for("message")
        assert msg["id"] == ack["id"] and msg["text"] == "over prosessgrensen"
        ack = await citizen.send(cid, "og tilbake")
        assert [m["id"] for m in await doctor.wait_for("message")] == [ack["id"]]  # no echo to the sender
    finally:
        await doctor.close()
        await citizen.close()
