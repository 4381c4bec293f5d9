"""What the chat's parts share on one process: the Socket.IO server, the connections, the stores once bound,
the background tasks and the broadcast budget."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import socketio

from rooms.events import EventHub
from rooms.store import Store

from .limits import ChatLimits
from .session import Session, consultation_room
from .store import ChatStore

log = logging.getLogger(__name__)

# Broadcasts in flight at once. With REDIS_URL every broadcast is also a PUBLISH on the AsyncRedisManager's own
# redis-py client, whose pool (redis-py 8: 100 connections, non-blocking) fails with "Too many connections"
# beyond that -- and python-socketio then drops the publish and reconnects its listener. A FIFO semaphore
# keeps well under the pool and keeps broadcasts in arrival order.
MAX_BROADCASTS_IN_FLIGHT = 48


@dataclass
class ChatCounters:
    """Plain counters, read by the Prometheus collector at scrape time (chat/metrics.py)."""

    messages: int = 0
    attachments: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class ChatContext:
    def __init__(self, sio: socketio.AsyncServer, limits: ChatLimits) -> None:
        self.sio = sio
        self.limits = limits
        self.sessions: dict[str, Session] = {}  # by Socket.IO sid
        self.counters = ChatCounters()
        self.tasks: set[asyncio.Future[Any]] = set()
        self.broadcasts = asyncio.Semaphore(MAX_BROADCASTS_IN_FLIGHT)
        self._store: Store | None = None
        self._chat: ChatStore | None = None
        self._hub: EventHub | None = None

    def bind(self, store: Store, chat: ChatStore, hub: EventHub) -> None:
        self._store, self._chat, self._hub = store, chat, hub

    @property
    def bound_chat(self) -> ChatStore | None:
        return self._chat

    @property
    def store(self) -> Store:
        assert self._store is not None, "ChatServer.start() not called"
        return self._store

    @property
    def chat(self) -> ChatStore:
        assert self._chat is not None, "ChatServer.start() not called"
        return self._chat

    @property
    def hub(self) -> EventHub:
        assert self._hub is not None, "ChatServer.start() not called"
        return self._hub

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def emit_local(self, event: str, data: Any, to: str) -> None:
        await self.sio.emit(event, data, to=to, ignore_queue=True)

    async def broadcast(self, tenant: str, cid: str, event: str, data: dict[str, Any],
                        skip_sid: str | None = None) -> None:
        """To every socket in the consultation on every process (but `skip_sid`, which has its ack). Best
        effort: the stream is the truth, and clients resync with `history`."""
        try:
            async with self.broadcasts:
                await self.sio.emit(event, data, room=consultation_room(tenant, cid), skip_sid=skip_sid)
        except Exception as exc:
            log.warning("broadcast of %s failed: %s", event, type(exc).__name__)
