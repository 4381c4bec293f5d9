"""One Redis pattern subscription per process for the EventBus topics (queue, ticket, consultation),
fanned out to the local sockets that care. Not one subscription per socket: a Redis connection each
would exhaust the pool long before 2,000 consultations.

Pub/sub may drop events while Redis is away; after resubscribing every listener gets
`{"type": "resync"}` and looks at the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from rooms.keys import Keys

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
RESYNC = {"type": "resync"}


def _channel_regex() -> re.Pattern[str]:
    template = Keys("TENANT").events("TOPIC")
    pattern = re.escape(template).replace("TENANT", "(?P<tenant>[^}]+)").replace("TOPIC", "(?P<topic>.+)")
    return re.compile("^" + pattern + "$")


class EventHub:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._listeners: dict[tuple[str, str], set[Listener]] = {}
        self._channel = _channel_regex()
        self._pattern = Keys("*").events("*")
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, tenant: str, topic: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault((tenant, topic), set()).add(listener)

        def remove() -> None:
            group = self._listeners.get((tenant, topic))
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[(tenant, topic)]
        return remove

    def _dispatch(self, key: tuple[str, str], event: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(key, ())):
            try:
                listener(event)
            except Exception as exc:  # the type only: an event may carry a display name
                log.error("an event listener failed: %s", type(exc).__name__)

    async def start(self, timeout_s: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), timeout_s)

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 5)

    async def _run(self) -> None:
        delay = 0.2
        first = True
        while not self._stopping:
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._pattern)
                self.subscribed.set()
                if not first:
                    for key in list(self._listeners):
                        self._dispatch(key, RESYNC)
                first, delay = False, 0.2
                async for msg in pubsub.listen():
                    if msg.get("type") != "pmessage":
                        continue
                    m = self._channel.match(msg["channel"])
                    if not m:
                        continue
                    try:
                        event = json.loads(msg["data"])
                    except ValueError:
                        continue
                    self._dispatch((m["tenant"], m["topic"]), event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("event subscription lost (%s); retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
