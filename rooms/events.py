"""Cross-process events about one consultation or queue (admitted, denied, ended, called, ...).

Redis pub/sub: fast, and it may drop a message when a subscriber is slow or reconnecting, so
nothing that must not be lost travels only here. State lives in the store; events say "look again".

`EventBus.publish` sends; `EventHub` receives. There is ONE `EventHub` per process (created by the
composition root and handed to chat and signaling): a single Redis pattern subscription fanned out to
local listeners. Not one subscription per socket: a Redis connection per signaling session or chat
socket would exhaust the connection pool (and starve REST and chat) long before the process is busy.
Pub/sub may drop events while Redis is away; after resubscribing every listener gets
`{"type": "resync"}` and looks at the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from .keys import Keys

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
RESYNC: dict[str, Any] = {"type": "resync"}


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


class _ResyncingPubSub(PubSub):
    """redis-py reconnects a pub/sub connection and resubscribes inside its Retry (a dropped connection, a
    Sentinel failover) without raising; events published in the gap are lost, so listeners get a resync."""

    def __init__(self, on_reconnect: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_reconnect = on_reconnect

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self._on_reconnect()


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

    @contextlib.contextmanager
    def inbox(self, tenant: str, topic: str, maxsize: int = 64) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of one topic's events for one async consumer (a signaling session). A consumer that falls
        `maxsize` events behind gets a single resync instead of an unbounded backlog."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)

        def put(event: dict[str, Any]) -> None:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait(RESYNC)

        remove = self.add(tenant, topic, put)
        try:
            yield queue
        finally:
            remove()

    def _resync_all(self) -> None:
        for key in list(self._listeners):
            self._dispatch(key, RESYNC)

    def _pubsub(self) -> PubSub:
        if isinstance(self._r, RedisCluster):
            # Classic pub/sub reaches every node of a cluster: one pattern subscription on any node hears all
            # (sharded pub/sub has no patterns). A lost node surfaces as an error here: resubscribe below.
            return self._r.pubsub(ignore_subscribe_messages=True)
        return _ResyncingPubSub(self._resync_all, self._r.connection_pool, ignore_subscribe_messages=True)

    def _dispatch(self, key: tuple[str, str], event: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(key, ())):
            try:
                listener(event)
            except Exception as exc:  # the type only: an event may carry a display name
                log.error("an event listener failed: %s", type(exc).__name__)

    async def start(self, timeout_s: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")
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
            pubsub = None
            try:
                if isinstance(self._r, RedisCluster):
                    await self._r.initialize()  # the slot map, to pick a node for the subscription
                pubsub = self._pubsub()
                await pubsub.psubscribe(self._pattern)
                self.subscribed.set()
                if not first:
                    self._resync_all()
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
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
