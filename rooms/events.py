"""Cross-process events about one consultation or queue (admitted, denied, ended, called, ...).

Redis pub/sub: fast, and it may drop a message when a subscriber is slow or reconnecting, so
nothing that must not be lost travels only here. State lives in the store; events say "look again".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from .keys import Keys


def consultation_topic(cid: str) -> str:
    return f"consultation:{cid}"


def ticket_topic(ticket_id: str) -> str:
    return f"ticket:{ticket_id}"


def queue_topic(service: str) -> str:
    return f"queue:{service}"


class EventBus:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def publish(self, tenant: str, topic: str, event: dict[str, Any]) -> None:
        await self._r.publish(Keys(tenant).events(topic), json.dumps(event))

    @asynccontextmanager
    async def subscribe(self, tenant: str, *topics: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*[Keys(tenant).events(t) for t in topics])

        async def events() -> AsyncIterator[dict[str, Any]]:
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    yield json.loads(msg["data"])

        try:
            yield events()
        finally:
            await pubsub.aclose()
