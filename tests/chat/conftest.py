"""Chat fixtures: the whole app on a loopback port with real Redis, and Socket.IO clients against it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient, TestServer

from signaling.app import build_app
from signaling.config import Config
from tests.conftest import bearer, dev_token

ORIGIN = "http://chat.example.test"  # an allowed browser origin (config allowed_origins)


@dataclass
class Client:
    """A python-socketio AsyncClient that records every server event it receives."""

    sio: socketio.AsyncClient
    events: dict[str, list[Any]] = field(default_factory=dict)

    def got(self, event: str) -> list[Any]:
        return self.events.setdefault(event, [])

    async def call(self, event: str, data: Any = None, wait_s: float = 10) -> Any:
        if data is None:
            return await self.sio.call(event, timeout=wait_s)
        return await self.sio.call(event, data, timeout=wait_s)

    async def wait_for(self, event: str, count: int = 1, wait_s: float = 10) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(self.got(event)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} {event} events, got {len(self.got(event))}")
            await asyncio.sleep(0.01)
        return self.got(event)

    async def send(self, cid: str, text: str, client_id: str | None = None) -> dict[str, Any]:
        return await self.call("message", {"consultation_id": cid, "client_id": client_id or uuid.uuid4().hex,
                                           "text": text})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


EVENTS = ("message", "typing", "read", "knock", "ended", "queue_position", "called", "error")


async def connect(base_url: str, token: str | None, *, origin: str | None = ORIGIN,
                  display_name: str | None = None) -> Client:
    sio = socketio.AsyncClient(reconnection=False)
    client = Client(sio)
    for event in EVENTS:
        sio.on(event, (lambda e: lambda data=None: client.got(e).append(data))(event))
    sio.on("connect_error", lambda data=None: client.got("connect_error").append(data))
    auth: dict[str, str] = {}
    if token is not None:
        auth["token"] = token
    if display_name is not None:
        auth["display_name"] = display_name
    headers = {"Origin": origin} if origin else {}
    await sio.connect(base_url, auth=auth, headers=headers, transports=["websocket"], socketio_path="socket.io",
                      wait_timeout=5)
    return client


@pytest.fixture
def chat_config(make_config) -> Config:  # type: ignore[no-untyped-def]
    return make_config(allowed_origins=[ORIGIN])


async def start_app(config: Config) -> TestClient:
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def chat_app(chat_config: Config, redis_url: str) -> AsyncIterator[TestClient]:
    from rooms.store import connect as redis_connect

    r = redis_connect(redis_url)
    await r.flushdb()
    await r.aclose()
    client = await start_app(chat_config)
    yield client
    await client.close()


def base_url(app: TestClient) -> str:
    return str(app.make_url("/")).rstrip("/")


@dataclass
class Pair:
    cid: str
    doctor: str  # token
    citizen: str
    doctor_pid: str
    citizen_pid: str


async def consultation(app: TestClient, *, tenant: str = "oslo", tag: str = "") -> Pair:
    """A citizen queues, a clinician takes the ticket: a consultation with both admitted."""
    citizen = await dev_token(app, f"cit{tag}", "citizen", tenant, name=f"Kari Nordmann{tag}")
    doctor = await dev_token(app, f"doc{tag}", "clinician", tenant, name=f"Dr. Ås{tag}")
    r = await app.post(f"/api/v1/tenants/{tenant}/services/nettlege/queue",
                       json={"channel": "chat", "reason": "utslett"}, headers=bearer(citizen))
    assert r.status == 201, await r.text()
    r = await app.post(f"/api/v1/tenants/{tenant}/services/nettlege/queue/take", headers=bearer(doctor))
    assert r.status == 200, await r.text()
    body = await r.json()
    parts = {p["role"]: p["id"] for p in body["consultation"]["participants"]}
    return Pair(body["consultation_id"], doctor, citizen, parts["clinician"], parts["citizen"])


@pytest.fixture
async def joined(chat_app: TestClient) -> AsyncIterator[tuple[Pair, Client, Client]]:
    """A consultation with the clinician and the citizen connected and joined."""
    pair = await consultation(chat_app)
    url = base_url(chat_app)
    doctor = await connect(url, pair.doctor)
    citizen = await connect(url, pair.citizen)
    for c in (doctor, citizen):
        ack = await c.call("join", {"consultation_id": pair.cid})
        assert ack["ok"], ack
    yield pair, doctor, citizen
    await doctor.close()
    await citizen.close()


async def eventually(check: Callable[[], Awaitable[bool]], wait_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
