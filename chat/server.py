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

Who may do what is checked on every `join` against the store (admitted participants only; a session or
invite principal only in its own consultation; the principal's tenant only). Later events on that
consultation need a join on this connection. Nothing here logs message text or names, and nothing puts them
on Redis pub/sub: a stored message is announced by id and every process reads it from the stream (`_deliver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import socketio

from rooms.audit import Action
from rooms.errors import DomainError
from rooms.events import EventHub, consultation_topic, queue_topic, ticket_topic
from rooms.models import STAFF_ROLES, Participant, ParticipantState, Principal, Role, Ticket, TicketState
from rooms.store import Store

from .attachments import safe_name
from .errors import ChatError
from .limits import ChatLimits
from .messages import Message, Sender, valid_stream_id
from .store import ChatStore

log = logging.getLogger(__name__)

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Broadcasts in flight at once. With REDIS_URL every broadcast is also a PUBLISH on the AsyncRedisManager's own
# redis-py client, whose pool (redis-py 8: 100 connections, non-blocking) fails with "Too many connections"
# beyond that -- and python-socketio then drops the publish and reconnects its listener. A FIFO semaphore
# keeps well under the pool and keeps broadcasts in arrival order.
MAX_BROADCASTS_IN_FLIGHT = 48
HOST_ROLES = STAFF_ROLES  # get knock events for consultations they joined


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    session_token: str | None = None  # set when an invite was spent on connect


Identify = Callable[[str, str], Awaitable[Authenticated]]  # raises ChatError when refused
MedianConsultation = Callable[[str, str], int]  # (tenant, service) -> seconds, for eta_s


@dataclass
class Watch:
    ticket: Ticket
    remove: list[Callable[[], None]] = field(default_factory=list)
    last: tuple[int | None, int | None] | None = None
    pending: bool = False


@dataclass
class Session:
    principal: Principal
    session_token: str | None
    joined: dict[str, Participant] = field(default_factory=dict)  # consultation id -> me there
    watching: dict[str, Watch] = field(default_factory=dict)  # ticket id -> watch
    last_typing: float = 0.0
    # python-socketio runs each event in its own task: without this, two messages sent back to back on one
    # connection could be stored in the other order.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)


def _obj(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ChatError("invalid_event", "Hendelsen må være et JSON-objekt.")
    return data


def _id(d: dict[str, Any], name: str) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not ID.match(v):
        raise ChatError("invalid_event", f"Feltet {name} mangler eller er ugyldig.")
    return v


def _cursor(d: dict[str, Any], name: str, required: bool = False) -> str | None:
    v = d.get(name)
    if v is None and not required:
        return None
    if not valid_stream_id(v):
        raise ChatError("invalid_event", f"Feltet {name} må være en meldings-id (som 1700000000000-0).")
    return v


def room(tenant: str, cid: str) -> str:
    return f"c:{tenant}:{cid}"


def host_room(tenant: str, cid: str) -> str:
    return f"h:{tenant}:{cid}"


@dataclass
class ChatCounters:
    """Plain counters, read by the Prometheus collector at scrape time (chat/metrics.py)."""

    messages: int = 0
    attachments: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class ChatServer:
    def __init__(self, identify: Identify, *, origins: list[str], redis_url: str | None,
                 median_consultation_s: MedianConsultation, limits: ChatLimits | None = None,
                 client_manager: socketio.AsyncManager | None = None) -> None:
        """Built with the app (the Socket.IO routes must exist before it starts); `start` binds the store."""
        self.limits = limits or ChatLimits()
        self._identify = identify
        self.origins = list(origins)
        self._median = median_consultation_s
        # `client_manager`: a Sentinel or Cluster deployment's manager (signaling/sio_manager.py).
        manager = client_manager or (socketio.AsyncRedisManager(redis_url, channel="nettlege-chat")
                                     if redis_url else None)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=manager, cors_allowed_origins=self.origins,
            max_http_buffer_size=self.limits.max_packet_bytes, logger=False, engineio_logger=False)
        self.store: Store
        self.chat: ChatStore
        self.hub: EventHub | None = None
        self.sessions: dict[str, Session] = {}
        self._consultation_watch: dict[tuple[str, str], tuple[int, Callable[[], None]]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._deliveries: dict[tuple[str, str], asyncio.Future[Any]] = {}  # the last message being delivered
        self._broadcasts = asyncio.Semaphore(MAX_BROADCASTS_IN_FLIGHT)
        self.counters = ChatCounters()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for event, fn in (("join", self._join), ("leave", self._leave), ("message", self._message),
                          ("attachment", self._attachment), ("history", self._history),
                          ("typing", self._typing), ("read", self._read), ("watch_ticket", self._watch_ticket),
                          ("whoami", self._whoami)):
            self.sio.on(event, self._guard(event, fn))

    def attach(self, app: Any) -> None:
        self.sio.attach(app, socketio_path="socket.io")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, store: Store, chat: ChatStore, hub: EventHub) -> None:
        """`hub` is the process's one event subscription, owned (started, stopped) by the composition root."""
        self.store, self.chat, self.hub = store, chat, hub

    async def stop(self) -> None:
        for task in list(self._tasks):
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

    @property
    def _hub(self) -> EventHub:
        assert self.hub is not None, "ChatServer.start() not called"
        return self.hub

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit_local(self, event: str, data: Any, to: str) -> None:
        await self.sio.emit(event, data, to=to, ignore_queue=True)

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
        self.sessions[sid] = Session(who.principal, who.session_token)

    async def _on_disconnect(self, sid: str, *_: Any) -> None:
        s = self.sessions.pop(sid, None)
        if s is None:
            return
        for cid in list(s.joined):
            self._unwatch_consultation(s.principal.tenant, cid)
        for tid, watch in s.watching.items():
            for remove in watch.remove:
                remove()
            if any(tid in other.watching for other in self.sessions.values()):
                continue  # another tab of the owner on this process still watches it
            with contextlib.suppress(Exception):
                # The owner's live connection dropped: the ticket keeps its place for the grace period.
                await self.store.queue.disconnected(watch.ticket.tenant, watch.ticket.id)

    def _guard(self, event: str, fn: Callable[[str, Session, dict[str, Any]], Awaitable[dict[str, Any]]]
               ) -> Callable[..., Awaitable[dict[str, Any]]]:
        """Every event: a session, one JSON object, domain errors as `error` -- never an unhandled exception."""
        async def handler(sid: str, *args: Any) -> dict[str, Any]:
            try:
                session = self.sessions.get(sid)
                if session is None:
                    raise ChatError("unauthorized", "Du må logge inn.")
                if len(args) > 1:
                    raise ChatError("invalid_event", "Send ett JSON-objekt per hendelse.")
                data = _obj(args[0]) if args else ({} if event == "whoami" else _obj(None))
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
            self.counters.errors[err.code] = self.counters.errors.get(err.code, 0) + 1
            with contextlib.suppress(Exception):
                await self._emit_local("error", payload, sid)
            return payload
        return handler

    def _me(self, session: Session, cid: str) -> Participant:
        me = session.joined.get(cid)
        if me is None:
            raise ChatError("not_joined", "Bli med i konsultasjonen (join) først.")
        return me

    # --- consultation chat --------------------------------------------------------------------

    async def _whoami(self, _sid: str, s: Session, _d: dict[str, Any]) -> dict[str, Any]:
        p = s.principal
        return {"role": p.role.value, "tenant": p.tenant, "participant_id": p.participant_id,
                "consultation_id": p.consultation_id, "session_token": s.session_token}

    async def _join(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        after = _cursor(d, "after_id")
        p = s.principal
        not_found = ChatError("consultation_not_found", "Fant ikke denne konsultasjonen.")
        if p.consultation_id and p.consultation_id != cid:
            raise not_found
        try:
            c = await self.store.consultations.get(p.tenant, cid)  # the principal's tenant only
        except DomainError:
            raise not_found from None
        me = c.participant_for(p.subject)
        if me is None:
            raise not_found
        if me.state != ParticipantState.ADMITTED:
            raise ChatError("not_admitted", "Du venter på å bli sluppet inn i konsultasjonen.")
        history, more = await self.chat.messages.history(p.tenant, cid, after, since=me.history_from)
        reads = await self.chat.messages.reads(p.tenant, cid)
        first = cid not in s.joined
        s.joined[cid] = me
        await self.sio.enter_room(sid, room(p.tenant, cid))
        if p.role in HOST_ROLES:
            await self.sio.enter_room(sid, host_room(p.tenant, cid))
        if first:
            self._watch_consultation(p.tenant, cid)
            await self.store.audit.record(p.tenant, Action.TRANSCRIPT_READ, actor=p.subject, role=p.role,
                                          consultation_id=cid, channel="chat")
        return {"consultation_id": cid, "participant_id": me.id, "state": c.state.value,
                "outcome": c.outcome.value if c.outcome else None,
                "participants": [x.public() for x in c.participants if x.state == ParticipantState.ADMITTED],
                "history": [m.public() for m in history], "more": more, "reads": reads,
                "session_token": s.session_token}

    async def _leave(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        if s.joined.pop(cid, None) is not None:
            await self.sio.leave_room(sid, room(s.principal.tenant, cid))
            await self.sio.leave_room(sid, host_room(s.principal.tenant, cid))
            self._unwatch_consultation(s.principal.tenant, cid)
        return {}

    def _text(self, d: dict[str, Any], required: bool = True) -> str:
        text = d.get("text", None if required else "")
        if not isinstance(text, str):
            raise ChatError("invalid_event", "Feltet text må være tekst.")
        if len(text) > self.limits.max_text_chars:
            raise ChatError("text_too_long", f"Meldingen er for lang (høyst {self.limits.max_text_chars} tegn).")
        if required and not text.strip():
            raise ChatError("text_empty", "Meldingen er tom.")
        return text

    def _client_id(self, d: dict[str, Any]) -> str:
        v = d.get("client_id")
        if not isinstance(v, str) or not ID.match(v) or len(v) > self.limits.max_client_id_chars:
            raise ChatError("invalid_event", "Feltet client_id mangler eller er ugyldig (1-64 tegn A-Z, 0-9, _ -).")
        return v

    async def _message(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        client_id = self._client_id(d)
        text = self._text(d)
        me = self._me(s, cid)
        sender = Sender(me.id, me.role.value, me.display_name)
        async with s.sending:
            await self.store.durability.admit()  # REDIS_MIN_REPLICAS_ACK: too few replicas, refused unstored
            stored = await self.chat.messages.append(s.principal.tenant, cid, sender, client_id, text)
            await self.store.durable()  # acked (and broadcast) only once the replicas have it
            if stored.created:
                self.counters.messages += 1
                msg = Message(stored.id, cid, sender, text, stored.ts)
                await self._announce_message(s.principal.tenant, cid, msg.id, skip_sid=sid)
        return {"id": stored.id, "ts": stored.ts, "duplicate": not stored.created}

    async def _attachment(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        client_id = self._client_id(d)
        caption = self._text(d, required=False)
        me = self._me(s, cid)
        tenant = s.principal.tenant
        sender = Sender(me.id, me.role.value, me.display_name)
        att = self.chat.attachments
        content_type = att.check(d.get("data"))
        async with s.sending:
            return await self._store_attachment(sid, tenant, cid, sender, client_id, caption, d, content_type)

    async def _store_attachment(self, sid: str, tenant: str, cid: str, sender: Sender, client_id: str,
                                caption: str, d: dict[str, Any], content_type: str) -> dict[str, Any]:
        att = self.chat.attachments
        earlier = await self.chat.messages.previous(tenant, cid, sender.participant_id, client_id)
        if earlier is not None:  # a retry of an upload already stored: answer it, store nothing
            first = await self.chat.messages.one(tenant, cid, earlier.id)
            return {"id": earlier.id, "ts": earlier.ts, "duplicate": True,
                    "attachment": first.attachment if first else None}
        await self.store.durability.admit()
        aid = await att.put(tenant, cid, bytes(d["data"]), content_type, owner=sender.participant_id)
        meta = {"id": aid, "content_type": content_type, "size": len(d["data"]),
                "name": safe_name(d.get("name"), content_type)}
        try:
            stored = await self.chat.messages.append(tenant, cid, sender, client_id, caption, attachment=meta)
        except Exception:
            with contextlib.suppress(Exception):
                await att.discard(tenant, cid, aid, owner=sender.participant_id)
            raise
        await self.store.durable()  # the attachment and its message, before the ack and the broadcast
        if not stored.created:  # a retry: the first upload is the one kept
            await att.discard(tenant, cid, aid, owner=sender.participant_id)
            first = await self.chat.messages.one(tenant, cid, stored.id)
            return {"id": stored.id, "ts": stored.ts, "duplicate": True,
                    "attachment": first.attachment if first else None}
        self.counters.attachments += 1
        msg = Message(stored.id, cid, sender, caption, stored.ts, meta)
        await self._announce_message(tenant, cid, msg.id, skip_sid=sid)
        return {"id": stored.id, "ts": stored.ts, "duplicate": False, "attachment": meta}

    async def _announce_message(self, tenant: str, cid: str, message_id: str, skip_sid: str) -> None:
        """Tell every process that a message was stored -- by its id only: each fetches and opens it from the
        stream and sends it to its own sockets in the consultation (`_deliver`). Text and names never travel on
        Redis pub/sub. Best effort like every broadcast: clients resync with `history`."""
        try:
            async with self._broadcasts:
                await self.store.events.publish(tenant, consultation_topic(cid),
                                                {"type": "chat_message", "id": message_id, "skip_sid": skip_sid})
        except Exception as exc:
            log.warning("announcing a message failed: %s", type(exc).__name__)

    async def _deliver(self, tenant: str, cid: str, message_id: str, skip_sid: str | None,
                       before: asyncio.Future[Any] | None) -> None:
        """Fetch an announced message and send it to this process's sockets in the consultation, after the
        message announced before it (announcements arrive in stream order; fetches may finish out of order)."""
        try:
            msg = await self.chat.messages.one(tenant, cid, message_id)
        except Exception as exc:  # the type only: never content
            log.warning("fetching an announced message failed: %s", type(exc).__name__)
            msg = None
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        if msg is not None:
            await self.sio.emit("message", msg.public(), room=room(tenant, cid), skip_sid=skip_sid,
                                ignore_queue=True)

    async def _knock(self, tenant: str, cid: str, participant_id: str) -> None:
        """A knock announced by id: the display name comes from the store (it never travels on pub/sub)."""
        try:
            p = (await self.store.consultations.get(tenant, cid)).participant(participant_id)
        except Exception as exc:
            log.warning("reading a knocking participant failed: %s", type(exc).__name__)
            return
        if p is not None:
            payload = {"consultation_id": cid, "participant_id": p.id, "role": p.role.value,
                       "display_name": p.display_name}
            await self.sio.emit("knock", payload, room=host_room(tenant, cid), ignore_queue=True)

    async def _broadcast(self, tenant: str, cid: str, event: str, data: dict[str, Any],
                         skip_sid: str | None = None) -> None:
        """To every socket in the consultation on every process (but `skip_sid`, which has its ack). Best
        effort: the stream is the truth, and clients resync with `history`."""
        try:
            async with self._broadcasts:
                await self.sio.emit(event, data, room=room(tenant, cid), skip_sid=skip_sid)
        except Exception as exc:
            log.warning("broadcast of %s failed: %s", event, type(exc).__name__)

    async def _history(self, _sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        after = _cursor(d, "after_id")
        limit = d.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ChatError("invalid_event", "Feltet limit må være et positivt heltall.")
        me = self._me(s, cid)
        messages, more = await self.chat.messages.history(s.principal.tenant, cid, after, limit,
                                                          since=me.history_from)
        return {"consultation_id": cid, "messages": [m.public() for m in messages], "more": more}

    async def _typing(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        typing = d.get("typing", True)
        if not isinstance(typing, bool):
            raise ChatError("invalid_event", "Feltet typing må være true eller false.")
        me = self._me(s, cid)
        now = time.monotonic()
        if typing and now - s.last_typing < self.limits.typing_min_interval_s:
            return {"sent": False}
        s.last_typing = now
        try:
            async with self._broadcasts:
                await self.sio.emit("typing", {"consultation_id": cid, "participant_id": me.id,
                                               "role": me.role.value, "typing": typing},
                                    room=room(s.principal.tenant, cid), skip_sid=sid)
        except Exception as exc:
            log.warning("typing broadcast failed: %s", type(exc).__name__)
        return {"sent": True}

    async def _read(self, _sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = _id(d, "consultation_id")
        up_to = _cursor(d, "up_to_id", required=True)
        me = self._me(s, cid)
        assert up_to is not None
        moved = await self.chat.messages.mark_read(s.principal.tenant, cid, me.id, up_to)
        if moved:
            await self._broadcast(s.principal.tenant, cid, "read", {"consultation_id": cid, "participant_id": me.id,
                                                                   "role": me.role.value, "up_to_id": moved})
        return {"up_to_id": moved}

    # --- consultation events: knock, ended ----------------------------------------------------

    def _watch_consultation(self, tenant: str, cid: str) -> None:
        key = (tenant, cid)
        if key in self._consultation_watch:
            n, remove = self._consultation_watch[key]
            self._consultation_watch[key] = (n + 1, remove)
            return

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("type")
            if kind == "chat_message" and valid_stream_id(event.get("id")):
                skip = event.get("skip_sid")
                before = self._deliveries.get(key)
                task = asyncio.ensure_future(self._deliver(tenant, cid, event["id"],
                                                           skip if isinstance(skip, str) else None, before))
                self._deliveries[key] = task
                self._tasks.add(task)
                task.add_done_callback(lambda t: self._delivered(key, t))
            elif kind == "knock" and isinstance(event.get("participant_id"), str):
                self._spawn(self._knock(tenant, cid, event["participant_id"]))
            elif kind == "ended":
                # The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
                guests = [sid for sid, sess in self.sessions.items() if cid in sess.joined
                          and sess.joined[cid].role in (Role.INTERPRETER, Role.RELATIVE)]
                self._spawn(self.sio.emit("ended", {"consultation_id": cid, "outcome": event.get("outcome")},
                                          room=room(tenant, cid), skip_sid=guests or None, ignore_queue=True))
                for sid in guests:
                    self._spawn(self.sio.emit("ended", {"consultation_id": cid, "outcome": None}, to=sid,
                                              ignore_queue=True))

        self._consultation_watch[key] = (1, self._hub.add(tenant, consultation_topic(cid), on_event))

    def _delivered(self, key: tuple[str, str], task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if self._deliveries.get(key) is task:
            del self._deliveries[key]

    def _unwatch_consultation(self, tenant: str, cid: str) -> None:
        key = (tenant, cid)
        if key not in self._consultation_watch:
            return
        n, remove = self._consultation_watch[key]
        if n <= 1:
            remove()
            del self._consultation_watch[key]
        else:
            self._consultation_watch[key] = (n - 1, remove)

    # --- queue: position and called -----------------------------------------------------------

    async def _watch_ticket(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        tid = _id(d, "ticket_id")
        p = s.principal
        try:
            ticket = await self.store.queue.get(p.tenant, tid)
        except DomainError:
            ticket = None
        if ticket is None or ticket.owner != p.subject:
            raise ChatError("ticket_not_found", "Fant ikke denne plassen i køen.")
        if ticket.state == TicketState.WAITING:
            await self.store.queue.reconnected(p.tenant, tid)
        if tid not in s.watching and ticket.state == TicketState.WAITING:
            watch = Watch(ticket)
            s.watching[tid] = watch
            watch.remove.append(self._hub.add(p.tenant, queue_topic(ticket.service),
                                             lambda _e: self._refresh_soon(sid, tid)))
            watch.remove.append(self._hub.add(p.tenant, ticket_topic(tid), lambda _e: self._refresh_soon(sid, tid)))
        return await self._ticket_state(s, tid, ticket)

    async def _ticket_state(self, s: Session, tid: str, ticket: Ticket) -> dict[str, Any]:
        place = None
        if ticket.state == TicketState.WAITING:
            place = await self.store.queue.place(ticket, self._median(ticket.tenant, ticket.service))
        position, eta = (place.position, place.eta_s) if place else (None, None)
        watch = s.watching.get(tid)
        if watch:
            watch.last = (position, eta)
        return {"ticket_id": tid, "state": ticket.state.value, "position": position, "eta_s": eta,
                "consultation_id": ticket.consultation_id}

    def _refresh_soon(self, sid: str, tid: str) -> None:
        s = self.sessions.get(sid)
        watch = s.watching.get(tid) if s else None
        if watch is None or watch.pending:
            return
        watch.pending = True
        self._spawn(self._refresh(sid, tid))

    async def _refresh(self, sid: str, tid: str) -> None:
        """Look at the ticket again (after any queue or ticket event) and tell the owner what changed."""
        await asyncio.sleep(0.02)  # coalesce a burst of queue changes into one look
        s = self.sessions.get(sid)
        watch = s.watching.get(tid) if s else None
        if s is None or watch is None:
            return
        watch.pending = False
        try:
            ticket = await self.store.queue.get(watch.ticket.tenant, tid)
            before = watch.last
            state = await self._ticket_state(s, tid, ticket)
        except Exception as exc:
            log.warning("queue position refresh failed: %s", type(exc).__name__)
            return
        if ticket.state == TicketState.TAKEN and ticket.consultation_id:
            await self._emit_local("called", {"ticket_id": tid, "consultation_id": ticket.consultation_id}, sid)
        elif ticket.state != TicketState.WAITING or state["position"] is None:
            await self._emit_local("queue_position", {**state, "position": None, "eta_s": None}, sid)
        elif (state["position"], state["eta_s"]) != before:
            await self._emit_local("queue_position", {"ticket_id": tid, "state": state["state"],
                                                      "position": state["position"], "eta_s": state["eta_s"]}, sid)
            return
        else:
            return
        for remove in watch.remove:  # the ticket no longer waits: stop watching it
            remove()
        s.watching.pop(tid, None)
