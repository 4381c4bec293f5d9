"""Encryption at rest and crypto-shredding, proved against what is actually in Redis."""

from __future__ import annotations

import base64
import time

import pytest

from chat.crypto import DataKeys, open_sealed, seal
from chat.errors import ChatError
from chat.keys import ChatKeys
from rooms.store import connect as redis_connect
from signaling.appkeys import CONFIG as CONFIG_KEY
from signaling.appkeys import STORE
from signaling.chat_wiring import CHAT, shred_expired
from tests.chat.conftest import base_url, connect
from tests.chat.test_attachments_and_transcript import tiny_png
from tests.conftest import bearer

SECRET = "Blodtrykket mitt er 180/110 og jeg tar Albyl-E"
PHOTO_MARK = b"RASH-PHOTO-PLAINTEXT-MARK"


async def _dump(redis_url: str) -> bytes:
    """Every key and value in Redis, as raw bytes."""
    import redis.asyncio as aioredis

    from rooms.store import RedisSettings

    cluster = RedisSettings.from_url(redis_url).cluster_url  # tests/ha runs this suite on a Redis Cluster too
    r = aioredis.RedisCluster.from_url(cluster) if cluster else aioredis.Redis.from_url(redis_url)  # raw bytes
    out = []
    async for key in r.scan_iter(count=1000):
        kind = (await r.type(key)).decode()
        out.append(key)
        if kind == "string":
            out.append(await r.get(key))
        elif kind == "hash":
            for f, v in (await r.hgetall(key)).items():
                out += [f, v]
        elif kind == "stream":
            for _id, fields in await r.xrange(key):
                for f, v in fields.items():
                    out += [f, v]
        elif kind == "zset":
            out += [m for m, _ in await r.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            out += list(await r.smembers(key))
        elif kind == "list":
            out += await r.lrange(key, 0, -1)
    await r.aclose()
    return b"\n".join(out)


async def test_message_text_and_attachments_are_never_in_redis_in_plaintext(chat_app, joined, redis_url):
    pair, doctor, citizen = joined
    await citizen.send(pair.cid, SECRET)
    photo = tiny_png() + PHOTO_MARK  # trailing bytes after IEND: still a PNG by its header
    ack = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "f", "data": photo})
    assert ack["ok"], ack
    await doctor.wait_for("message", 2)
    dump = await _dump(redis_url)
    assert ChatKeys("oslo").messages(pair.cid).encode() in dump  # the scan does see the chat
    for needle in (SECRET.encode(), b"Albyl", PHOTO_MARK, base64.b64encode(photo)[:40]):
        assert needle not in dump, needle
    # ...while the participants read it as sent.
    history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
    assert history["messages"][0]["text"] == SECRET


async def test_ciphertext_is_bound_to_its_consultation_and_tenant(redis_url):
    r = redis_connect(redis_url)
    keys = DataKeys(r, b"k" * 32)
    a = await keys.get_or_create("oslo", "c_one")
    b = await keys.get_or_create("oslo", "c_two")
    assert a != b and await keys.get_or_create("oslo", "c_one") == a
    sealed = seal(a, b"hei", "ctx-1")
    assert open_sealed(a, sealed, "ctx-1") == b"hei"
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        open_sealed(a, sealed, "ctx-2")
    # A wrapped key copied to another consultation does not unwrap there.
    wrapped = await r.get(ChatKeys("oslo").data_key("c_one"))
    await r.set(ChatKeys("bergen").data_key("c_one"), wrapped)
    with pytest.raises(ChatError):
        await DataKeys(r, b"k" * 32).get("bergen", "c_one")
    # Another master key cannot unwrap it either.
    with pytest.raises(ChatError):
        await DataKeys(r, b"x" * 32).get("oslo", "c_one")
    await r.flushdb()
    await r.aclose()


async def test_after_retention_the_data_key_is_shredded_and_the_history_is_unreadable(chat_app, joined, redis_url):
    pair, _doctor, citizen = joined
    await citizen.send(pair.cid, SECRET)
    app = chat_app.server.app
    chat = app[CHAT]
    assert await shred_expired(app) == []  # still open: nothing to shred
    await chat_app.post(f"/api/v1/consultations/{pair.cid}/end", json={"outcome": "resolved"},
                        headers=bearer(pair.doctor))
    assert await shred_expired(app) == []  # ended just now: kept for the retention period
    retention_s = app[CONFIG_KEY].retention_days * 86400
    assert app[CONFIG_KEY].retention_days == 30
    assert await shred_expired(app, now=time.time() + retention_s - 60) == []
    assert await shred_expired(app, now=time.time() + retention_s + 1) == [pair.cid]

    r = redis_connect(redis_url)
    k = ChatKeys("oslo")
    assert await r.get(k.data_key(pair.cid)) is None
    assert await r.xlen(k.messages(pair.cid)) == 1  # ciphertext still there (for a day) ...
    assert 0 < await r.ttl(k.messages(pair.cid)) <= 86400
    await r.aclose()
    with pytest.raises(ChatError) as exc:  # ... and unreadable
        await chat.messages.history("oslo", pair.cid)
    assert exc.value.code == "history_shredded"
    # Every way in says so: a fresh process (no cached key), the socket, the export.
    fresh = DataKeys(app[STORE].redis, app[CONFIG_KEY].chat_key_bytes())
    assert await fresh.get("oslo", pair.cid) is None
    late = await connect(base_url(chat_app), pair.doctor)
    try:
        ack = await late.call("join", {"consultation_id": pair.cid})
        assert ack["error"] == "history_shredded"
    finally:
        await late.close()
    r2 = await chat_app.get(f"/api/v1/consultations/{pair.cid}/transcript", headers=bearer(pair.doctor))
    assert r2.status == 410 and (await r2.json())["error"] == "history_shredded"
    audit = await app[STORE].audit.for_consultation("oslo", pair.cid)
    assert [e.fields["action"] for e in audit].count("chat.shredded") == 1
    assert await shred_expired(app, now=time.time() + 2 * retention_s) == []  # idempotent

