"""REDIS_MIN_REPLICAS_ACK without replicas refuses instead of acking; /readyz while no primary is reachable."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from load_tests.clients import MediaClient, SignalClient
from signaling.app import build_app
from tests.chat.conftest import base_url, connect, consultation
from tests.conftest import bearer, dev_token

from .conftest import ha_config, in_thread, running
from .topology import SentinelSet

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def test_min_replicas_ack_without_replicas_refuses_writes(config_file, redis_url):  # type: ignore[no-untyped-def]
    from rooms.store import connect as redis_connect

    r = redis_connect(redis_url)
    await r.flushdb()
    # the chat needs a consultation: made while acks need no replica
    plain = TestClient(TestServer(build_app(ha_config(config_file, {"REDIS_URL": redis_url})), host="127.0.0.1"))
    await plain.start_server()
    async with running(plain):
        pair = await consultation(plain)
    config = ha_config(config_file, {"REDIS_URL": redis_url, "REDIS_MIN_REPLICAS_ACK": "1"})
    app = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await app.start_server()
    async with running(app):
        citizen = await dev_token(app, "kari", "citizen")
        resp = await app.post(Q, json={"channel": "chat", "reason": "r"}, headers=bearer(citizen))
        body = await resp.json()
        assert resp.status == 503 and body["error"] == "not_replicated" and body["retry_after_s"] >= 1
        assert body["message"] and resp.headers["Retry-After"] == str(body["retry_after_s"])
        assert await r.zcard("nl:{oslo}:queue:nettlege") == 0  # refused, not stored and left unacked

        client = await connect(base_url(app), pair.citizen)
        assert (await client.call("join", {"consultation_id": pair.cid}))["ok"]
        ack = await client.send(pair.cid, "hei", client_id="c1")
        assert ack["ok"] is False and ack["error"] == "not_replicated" and ack["retry_after_s"] >= 1
        assert ack in client.got("error") or await client.wait_for("error")
        history = await client.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert history["messages"] == []
        await client.close()
        metrics = await (await app.get("/metrics")).text()
        assert 'nettlege_store_deployment{kind="single",min_replicas_ack="1"} 1.0' in metrics

        # a knock over the signaling WebSocket: not welcomed unreplicated, closed with "come back later"
        async with aiohttp.ClientSession() as http:
            nurse = await dev_token(app, "sykepleier", "nurse")
            knocker = SignalClient(http, base_url(app), pair.cid, nurse, MediaClient("nurse"), "Sykepleier")
            with pytest.raises(ConnectionRefusedError, match="not_replicated"):
                await knocker.connect()
            assert knocker.events[0]["retry_after_s"] >= 1
            closing = await knocker.ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4503
            await knocker.close()
    await r.aclose()


async def test_readyz_is_503_while_no_primary_is_reachable(lone_primary: SentinelSet, config_file):  # type: ignore[no-untyped-def]
    config = ha_config(config_file, lone_primary.env(), redis_retry_s=1)
    app = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await app.start_server()
    async with running(app):
        assert (await app.get("/readyz")).status == 200
        await in_thread(lone_primary.kill_primary)  # no replica: nothing to fail over to

        async def status() -> int:
            return (await app.get("/readyz")).status
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (code := await status()) != 503:
            assert loop.time() < deadline, code
            await asyncio.sleep(0.1)
        body = await (await app.get("/readyz")).json()
        assert body["error"] == "redis_unavailable" and body["retry_after_s"] >= 1
        citizen = await dev_token(app, "kari", "citizen")
        resp = await app.post(Q, json={"channel": "chat", "reason": "r"}, headers=bearer(citizen))
        body = await resp.json()
        assert resp.status == 503 and body["error"] == "store_unavailable" and body["retry_after_s"] >= 1
        assert (await app.get("/healthz")).status == 200
        metrics = await (await app.get("/metrics")).text()
        assert "nettlege_store_reconnects_total" in metrics
        assert "nettlege_store_reconnects_total 0.0" not in metrics
