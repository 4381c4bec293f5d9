"""The signaling socket under hostile input (issue 12: 11, 14, 15): clean `error` events, never 1011."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from signaling.app import build_app
from tests.conftest import bearer, close_app, dev_token


def _origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("/")).rstrip("/")}


async def _consultation(client: TestClient, token: str) -> str:
    r = await client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "legevakt"},
                          headers=bearer(token))
    assert r.status == 201
    return (await r.json())["id"]


async def _invite(client: TestClient, token: str, cid: str, role: str, lobby: bool) -> str:
    r = await client.post(f"/api/v1/consultations/{cid}/invites", json={"role": role, "lobby": lobby},
                          headers=bearer(token))
    assert r.status == 201
    return (await r.json())["token"]


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of this type (skipping participants updates and the like); None once closed."""
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return {"type": "closed", "close_code": ws.close_code}
        data = json.loads(msg.data)
        if data["type"] == kind or data["type"] == "error":
            return data


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    while not ws.closed:
        await ws.receive(timeout=10)
    return ws.close_code


async def test_hostile_frames_before_and_after_hello_are_errors_not_1011(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    cid = await _consultation(app_client, doc)
    path = f"/api/v1/consultations/{cid}/signal"
    deep = '{"type": "hello", "token": ' + "[" * 50_000 + "]" * 50_000 + "}"
    surrogate = '{"type": "hello", "token": "x", "display_name": "\\ud800"}'
    for first in (deep, surrogate, '{"type": "hello", "token": ["a"]}'):
        async with app_client.ws_connect(path, headers=_origin(app_client)) as ws:
            await ws.send_str(first)
            err = await _next(ws, "error")
            assert err["type"] == "error" and err["code"] == "hello_expected", err
            assert await _closed(ws) == 4400
    async with app_client.ws_connect(path, headers=_origin(app_client)) as ws:
        await ws.send_json({"type": "hello", "token": doc})
        assert (await _next(ws, "welcome"))["type"] == "welcome"
        for frame in (deep.replace("hello", "offer"), '{"type": "offer", "sdp": "\\udfff"}'):
            await ws.send_str(frame)
            assert (await _next(ws, "error"))["code"] == "bad_message"
        await ws.send_json({"type": "leave"})
        assert await _closed(ws) == 1000


async def test_a_seventh_participant_gets_room_full(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    cid = await _consultation(app_client, doc)
    path = f"/api/v1/consultations/{cid}/signal"
    sockets = []
    try:
        tokens = [doc] + [await _invite(app_client, doc, cid, "relative", lobby=False) for _ in range(6)]
        for i, token in enumerate(tokens):
            ws = await app_client.ws_connect(path, headers=_origin(app_client))
            sockets.append(ws)
            await ws.send_json({"type": "hello", "token": token, "display_name": f"P{i}"})
            first = await _next(ws, "welcome")
            if i < 6:
                assert first["type"] == "welcome" and first["state"] == "admitted", first
            else:
                assert first["type"] == "welcome"
                err = await _next(ws, "error")
                assert err["code"] == "room_full", err
                assert await _closed(ws) == 4403
    finally:
        for ws in sockets:
            await ws.close()


@pytest.fixture
async def turn_app(make_config, redis_url):
    from rooms.store import connect

    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    config = make_config(turn={"urls": ["turn:127.0.0.1:3478?transport=udp"], "secret": "turn-secret"})
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    yield client
    await close_app(client)


async def test_lobby_guests_get_turn_credentials_only_once_admitted(turn_app):
    client = turn_app
    doc = await dev_token(client, "d1", "clinician")
    cid = await _consultation(client, doc)
    path = f"/api/v1/consultations/{cid}/signal"
    async with client.ws_connect(path, headers=_origin(client)) as host:
        await host.send_json({"type": "hello", "token": doc})
        welcome = await _next(host, "welcome")
        assert any("turn:" in u for s in welcome["ice_servers"] for u in s["urls"])  # admitted: TURN at once
        token = await _invite(client, doc, cid, "relative", lobby=True)
        async with client.ws_connect(path, headers=_origin(client)) as guest:
            await guest.send_json({"type": "hello", "token": token, "display_name": "Mor"})
            lobby = await _next(guest, "welcome")
            assert lobby["state"] == "lobby" and lobby["ice_servers"] == []
            r = await client.post(f"/api/v1/consultations/{cid}/participants/{lobby['participant_id']}/admit",
                                  headers=bearer(doc))
            assert r.status == 200
            admitted = await _next(guest, "admitted")
            assert admitted["type"] == "admitted"
            assert any(s.get("username") and s.get("credential") for s in admitted["ice_servers"])


async def test_origin_is_required_and_aioice_does_not_log_addresses(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    cid = await _consultation(app_client, doc)
    path = f"/api/v1/consultations/{cid}/signal"
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await app_client.ws_connect(path, headers=headers)
        assert refused.value.status == 403
    assert logging.getLogger("aioice").getEffectiveLevel() >= logging.WARNING


async def test_a_connected_participant_gets_fresh_session_tokens(app_client, monkeypatch):
    from signaling import signal_lifetime
    from signaling.appkeys import AUTH

    monkeypatch.setattr(signal_lifetime, "SESSION_REFRESH_S", 0.2)  # 5 minutes in service
    doc = await dev_token(app_client, "d1", "clinician")
    cid = await _consultation(app_client, doc)
    async with app_client.ws_connect(f"/api/v1/consultations/{cid}/signal", headers=_origin(app_client)) as ws:
        await ws.send_json({"type": "hello", "token": doc})
        welcome = await _next(ws, "welcome")
        fresh = await _next(ws, "session_token")
        assert fresh["type"] == "session_token"
        who = await app_client.server.app[AUTH].verify(fresh["session_token"])
        assert who.consultation_id == cid and who.participant_id == welcome["participant_id"]
        r = await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(fresh["session_token"]))
        assert r.status == 200
