"""The whole app on loopback with real Redis, and aiortc participants joining over the signaling WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from load_tests.clients import MediaClient, SignalClient
from rooms.store import connect
from signaling.app import build_app
from tests.conftest import bearer, close_app, dev_token


@pytest.fixture
async def live(make_config, redis_url, request) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with a short drop grace; `@pytest.mark.app_config(key=value)` overrides more."""
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    marker = request.node.get_closest_marker("app_config")
    overrides = {"signal_drop_grace_s": 0.5, **(marker.kwargs if marker else {})}
    client = TestClient(TestServer(build_app(make_config(**overrides)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await close_app(client)


@pytest.fixture
async def participants(live: TestClient) -> AsyncIterator[Callable[..., Any]]:
    """make(cid, token, name, **media_kwargs) -> SignalClient (not yet connected)."""
    made: list[SignalClient] = []
    http = aiohttp.ClientSession()

    def make(cid: str, token: str, name: str, **media: Any) -> SignalClient:
        client = SignalClient(http, str(live.make_url("/")), cid, token, MediaClient(name, **media), name)
        made.append(client)
        return client

    yield make
    for c in made:
        await c.close()
    await http.close()


async def take_consultation(live: TestClient, citizen: str = "kari", doctor: str = "dr-ola") -> tuple[str, str, str]:
    """A citizen queues and a clinician takes the ticket: (consultation id, citizen token, doctor token)."""
    ct = await dev_token(live, citizen, "citizen")
    dt = await dev_token(live, doctor, "clinician")
    r = await live.post("/api/v1/tenants/oslo/services/nettlege/queue", json={"channel": "video", "reason": "r"},
                        headers=bearer(ct))
    assert r.status == 201
    taken = await (await live.post("/api/v1/tenants/oslo/services/nettlege/queue/take", headers=bearer(dt))).json()
    return taken["consultation_id"], ct, dt
