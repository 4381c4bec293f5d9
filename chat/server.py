"""The chat and lobby connection: a python-socketio AsyncServer (path /socket.io, namespace /).

Events and payloads are documented in docs/protocol.md ("Chat"). In short:
client -> server (each answered by an ack; errors also come as an `error` event):
  join {consultation_id, after_id?}      -> {ok, participant_id, history, more, reads, participants, ...}
  message {consultation_id, client_id, text}          -> {ok, id, ts}       (stored before the ack)
  attachment {consultation_id, client_id, data, name?, text?} -> {ok, id, ts, attachment}
  history {consultation_id, after_id}    -> {ok, messages, more}
  typing {consultation_id, typing}       -> {ok}
  read {consultation_id, up_to_id}       -> {ok, up_to_id}
  leave {consultation_id}                -> {ok}
  watch_ticket {ticket_id}               -> {ok, ticket_id, state, position, eta_s, consultation_id}
  whoami                                 -> {ok, role, tenant, participant_id, session_token}
server -> client: message, typing, read, knock, ended, queue_position, called, error.

This module is the connection glue: origin and credential on connect, one guard around every event (a session,
one JSON object, errors as `error` events, never an unhandled exception), and the lifecycle. The events
themselves: consultation_chat.py (the chat), consultation_events.py (message delivery, knock and ended fan-out),
queue_events.py (queue position and called).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import socketio

from rooms.errors import DomainError
from rooms.events import EventHub
from rooms.store import Store

from .consultation_chat import ConsultationChat
from .consultation_events import ConsultationEvents
from .context import ChatContext, ChatCounters
from .errors import ChatError
from .limits import ChatLimits
from .queue_events import MedianConsultation, QueueEvents
from .session import Authenticated, Handler, Identify, Session, obj
from .store import ChatStore

__all__ = ["Authenticated", "ChatServer", "Identify", "MedianConsultation"]

log = logging.getLogger(__name__)


class ChatServer:
    def __init__(self, identify: Identify, *, origins: list[str], redis_url: str | None,
                 median_consultation_s: MedianConsultation, limits: ChatLimits | None = None,
                 client_manager: socketio.AsyncManager | None = None) -> None:
        """Built with the app (the Socket.IO routes must exist before it starts); `start` binds the store."""
        self.limits = limits or ChatLimits()
        self._identify = identify
        self.origins = list(origins)
        # `client_manager`: a Sentinel or Cluster deployment's manager (signaling/sio_manager.py).
        manager = client_manager or (socketio.AsyncRedisManager(redis_url, channel="nettlege-chat")
                                     if redis_url else None)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=manager, cors_allowed_origins=self.origins,
            max_http_buffer_size=self.limits.max_packet_bytes, logger=False, engineio_logger=False)
        self._ctx = ChatContext(self.sio, self.limits)
        self._consultations = ConsultationEvents(self._ctx)
        self._chat = ConsultationChat(self._ctx, self._consultations)
        self._queue = QueueEvents(self._ctx, median_consultation_s)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        handlers: dict[str, Handler] = {**self._chat.handlers(), "watch_ticket": self._queue.watch_ticket,
                                        "whoami": self._whoami}
        for event, fn in handlers.items():
            self.sio.on(event, self._guard(event, fn))

    @property
    def sessions(self) -> dict[str, Session]:
        return self._ctx.sessions

    @property
    def counters(self) -> ChatCounters:
        return self._ctx.counters

    @property
    def chat(self) -> ChatStore | None:
        """The chat store once started (the metrics collector reads attachment usage from it)."""
        return self._ctx.bound_chat

    def attach(self, app: Any) -> None:
        self.sio.attach(app, socketio_path="socket.io")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, store: Store, chat: ChatStore, hub: EventHub) -> None:
        """`hub` is the process's one event subscription, owned (started, stopped) by the composition root."""
        self._ctx.bind(store, chat, hub)

    async def stop(self) -> None:
        for task in list(self._ctx.tasks):
            task.cancel()
        manager = self.sio.manager
        thread = getattr(manager, "thread", None)  # AsyncRedisManager's listener task (python-socketio 5.x)
        if isinstance(thread, asyncio.Task):
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await thread
        redis = getattr(manager, "redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()

    # --- connection ---------------------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        origin = environ.get("HTTP_ORIGIN")
        if origin not in self.origins:
            # Browsers always send Origin on WebSocket; non-browser clients must send an allowed one too.
            raise socketio.exceptions.ConnectionRefusedError(
                "origin_not_allowed", {"error": "origin_not_allowed", "message": "Tilkoblingen kommer fra en "
                                                                                  "adresse som ikke er tillatt."})
        token = auth.get("token") if isinstance(auth, dict) else None
        name = auth.get("display_name") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"error": "unauthorized", "message": "Du må logge inn."})
        try:
            who = await self._identify(token, name if isinstance(name, str) else "")
        except ChatError as e:
            raise socketio.exceptions.ConnectionRefusedError(e.code, {"error": e.code, "message": e.message}) \
                from None
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
            raise socketio.exceptions.ConnectionRefusedError(
                "unavailable", {"error": "unavailable", "message": "Tjenesten er midlertidig utilgjengelig."}) \
                from None
        self._ctx.sessions[sid] = Session(who.principal, who.session_token)

    async def _on_disconnect(self, sid: str, *_: Any) -> None:
        s = self._ctx.sessions.pop(sid, None)
        if s is None:
            return
        self._chat.left(s)
        await self._queue.dropped(s)

    def _guard(self, event: str, fn: Handler) -> Callable[..., Awaitable[dict[str, Any]]]:
        """Every event: a session, one JSON object, domain errors as `error` -- never an unhandled exception."""
        async def handler(sid: str, *args: Any) -> dict[str, Any]:
            try:
                session = self._ctx.sessions.get(sid)
                if session is None:
                    raise ChatError("unauthorized", "Du må logge inn.")
                if len(args) > 1:
                    raise ChatError("invalid_event", "Send ett JSON-objekt per hendelse.")
                data = obj(args[0]) if args else ({} if event == "whoami" else obj(None))
                return {"ok": True, **await fn(sid, session, data)}
            except ChatError as e:
                err = e
            except DomainError as e:  # NotReplicated/Unavailable carry retry_after_s
                err = ChatError(e.code, e.message, retry_after_s=getattr(e, "retry_after_s", None))
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("chat event %s: store unavailable (%s: %s)", event, type(exc).__name__,
                            str(exc)[:120] if isinstance(exc, aioredis.RedisError) else "")
                err = ChatError("unavailable", "Tjenesten er midlertidig utilgjengelig. Prøv igjen.",
                                retry_after_s=1)
            except Exception as exc:  # never echo: the exception text could carry message content
                log.error("chat event %s failed: %s", event, type(exc).__name__)
                err = ChatError("internal", "Noe gikk galt hos oss. Prøv igjen.")
            payload = err.payload(event)
            self._ctx.counters.errors[err.code] = self._ctx.counters.errors.get(err.code, 0) + 1
            with contextlib.suppress(Exception):
                await self._ctx.emit_local("error", payload, sid)
            return payload
        return handler

    async def _whoami(self, _sid: str, s: Session, _d: dict[str, Any]) -> dict[str, Any]:
        p = s.principal
        return {"role": p.role.value, "tenant": p.tenant, "participant_id": p.participant_id,
                "consultation_id": p.consultation_id, "session_token": s.session_token}
