"""Redis pub/sub carries ids, never content: a chat message, an attachment caption and a knock reach the others
while nothing published on any channel holds the text or a name."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from tests.chat.conftest import base_url, connect
from tests.chat.test_attachments_and_transcript import tiny_png
from tests.conftest import bearer

TEXT, CAPTION, GUEST = "Jeg har vondt i magen siden i går", "Her er utslettet", "Tolk Hemmeligsen"


async def test_messages_and_knocks_arrive_while_pubsub_carries_no_content(chat_app, joined, redis_url):
    pair, doctor, citizen = joined
    published: list[bytes] = []
    from rooms.store import RedisSettings

    # on a Redis Cluster (tests/ha) any one node hears every node's classic pub/sub
    r = aioredis.Redis.from_url(RedisSettings.from_url(redis_url).cluster_url or redis_url)
    pubsub = r.pubsub()
    await pubsub.psubscribe("*")

    async def listen() -> None:
        async for msg in pubsub.listen():
            if msg["type"] == "pmessage":
                published.append(msg["channel"] + b" " + msg["data"])

    listener = asyncio.create_task(listen())
    try:
        assert (await citizen.send(pair.cid, TEXT))["ok"]
        [got] = await doctor.wait_for("message")
        assert got["text"] == TEXT and got["sender"]["display_name"] == "Kari Nordmann"
        ack = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "cap", "data": tiny_png(),
                                                "text": CAPTION})
        assert ack["ok"], ack
        second = (await doctor.wait_for("message", 2))[1]
        assert second["text"] == CAPTION and second["attachment"]["id"] == ack["attachment"]["id"]
        assert citizen.got("message") == []  # the sender has its ack, not an echo

        invite = await (await chat_app.post(f"/api/v1/consultations/{pair.cid}/invites",
                                            json={"role": "interpreter"}, headers=bearer(pair.doctor))).json()
        guest = await connect(base_url(chat_app), invite["token"], display_name=GUEST)
        try:
            [knock] = await doctor.wait_for("knock")
            assert knock["display_name"] == GUEST and knock["role"] == "interpreter"
        finally:
            await guest.close()
        assert any(b"chat_message" in p for p in published)  # the announcements did go through pub/sub
        for secret in (TEXT, CAPTION, GUEST, "Kari Nordmann"):
            assert not any(secret.encode() in p for p in published), secret
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()
        await r.aclose()
