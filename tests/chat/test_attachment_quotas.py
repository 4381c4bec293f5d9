"""Attachment byte quotas (per participant, per consultation, per tenant, global): refused before storing,
with a Norwegian `error`, checked and added atomically, given back by the retention shred, on /metrics."""

from __future__ import annotations

import asyncio
import os
import time

from chat.keys import ChatKeys
from chat.limits import Quotas
from chat.store import ChatStore
from rooms.keys import Keys
from rooms.models import Outcome
from signaling.appkeys import STORE
from signaling.chat_wiring import CHAT, shred_expired
from tests.chat.conftest import base_url, connect, consultation
from tests.chat.test_attachments_and_transcript import JPEG

KEY = os.urandom(32)


async def _send(client, cid: str, n: int) -> dict:
    return await client.call("attachment", {"consultation_id": cid, "client_id": f"q{n}", "data": JPEG})


async def test_quotas_refuse_before_storing_with_an_error_event(chat_app, joined):
    pair, doctor, citizen = joined
    chat = chat_app.server.app[CHAT]
    size = len(JPEG)
    chat.attachments.quotas = Quotas(participant_bytes=2 * size, consultation_bytes=3 * size,
                                     tenant_bytes=100 * size, global_bytes=1000 * size)
    assert (await _send(citizen, pair.cid, 1))["ok"]
    assert (await _send(citizen, pair.cid, 2))["ok"]
    again = await _send(citizen, pair.cid, 2)  # a retry at the quota is answered, not refused
    assert again["ok"] and again["duplicate"] and again["attachment"]["size"] == size
    refused = await _send(citizen, pair.cid, 3)
    assert refused["error"] == "attachment_quota" and "bilder" in refused["message"]
    [event] = await citizen.wait_for("error")
    assert event["error"] == "attachment_quota" and event["event"] == "attachment"
    assert (await _send(doctor, pair.cid, 4))["ok"]  # the doctor has a quota of his own ...
    assert (await _send(doctor, pair.cid, 5))["error"] == "attachment_quota"  # ... within the consultation's
    redis = chat_app.server.app[STORE].redis
    k = ChatKeys("oslo")
    assert await redis.hlen(k.attachments(pair.cid)) == 3  # nothing stored for a refused one
    assert int(await redis.get(k.bytes_total())) == 3 * size
    assert (await citizen.send(pair.cid, "tekst går fortsatt"))["ok"]


async def test_tenant_and_global_caps_and_the_metric(chat_app, joined):
    pair, doctor, citizen = joined
    chat = chat_app.server.app[CHAT]
    size = len(JPEG)
    chat.attachments.quotas = Quotas(participant_bytes=100 * size, consultation_bytes=100 * size,
                                     tenant_bytes=2 * size, global_bytes=1000 * size)
    assert (await _send(citizen, pair.cid, 1))["ok"]
    assert (await _send(doctor, pair.cid, 2))["ok"]
    full = await _send(citizen, pair.cid, 3)
    assert full["error"] == "storage_full"
    body = await (await chat_app.get("/metrics")).text()
    assert f'nettlege_chat_attachment_bytes{{tenant="oslo"}} {float(2 * size)}' in body

    # Another tenant has room of its own, but not beyond the global cap over all tenants.
    other = await consultation(chat_app, tenant="bergen", tag="b")
    bergen = await connect(base_url(chat_app), other.citizen)
    try:
        assert (await bergen.call("join", {"consultation_id": other.cid}))["ok"]
        chat.attachments.quotas = Quotas(participant_bytes=100 * size, consultation_bytes=100 * size,
                                         tenant_bytes=100 * size, global_bytes=3 * size)
        assert (await _send(bergen, other.cid, 1))["ok"]
        assert (await _send(bergen, other.cid, 2))["error"] == "storage_full"
    finally:
        await bergen.close()


async def test_the_retention_shred_gives_the_bytes_back(chat_app, joined):
    pair, _doctor, citizen = joined
    app = chat_app.server.app
    assert (await _send(citizen, pair.cid, 1))["ok"]
    k = ChatKeys("oslo")
    assert int(await app[STORE].redis.get(k.bytes_total())) == len(JPEG)
    await app[STORE].consultations.end("oslo", pair.cid, Outcome.RESOLVED)
    far = time.time() + 400 * 86400
    assert await shred_expired(app, now=far) == [pair.cid]
    assert int(await app[STORE].redis.get(k.bytes_total())) == 0
    assert not await app[STORE].redis.exists(k.bytes(pair.cid))


async def test_concurrent_uploads_never_overshoot_a_quota(redis_client):
    n = 40
    chat = ChatStore(redis_client, KEY, tenants=("oslo",))
    chat.attachments.quotas = Quotas(participant_bytes=10 * len(JPEG), consultation_bytes=10 * len(JPEG),
                                     tenant_bytes=10**9, global_bytes=10**9)
    await redis_client.hset(Keys("oslo").consultation("c_1"), mapping={"id": "c_1", "state": "active"})

    async def one(i: int) -> bool:
        try:
            await chat.attachments.put("oslo", "c_1", JPEG, "image/jpeg", owner=f"p_{i % 2}")
            return True
        except Exception as exc:  # the quota refusal
            assert getattr(exc, "code", "") == "attachment_quota"
            return False

    stored = await asyncio.gather(*[one(i) for i in range(n)])
    assert sum(stored) == 10
    assert await redis_client.hlen(ChatKeys("oslo").attachments("c_1")) == 10
    assert int(await redis_client.get(ChatKeys("oslo").bytes_total())) == 10 * len(JPEG)
