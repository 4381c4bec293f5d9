"""Cross-process events about one consultation, ticket or queue, as typed values (`Event`).

Redis pub/sub: fast, and it may drop a message when a subscriber is slow or reconnecting, so
nothing that must not be lost travels only here. State lives in the store; events say "look again".

Every event names ids only, never personal data (names, reasons, phone numbers, message text): a listener
that needs a name reads it from the store, where it is sealed at rest. `encode`/`decode` are the one codec
between an `Event` and the wire: the channel carries the tenant and the topic (`consultation:{cid}`,
`ticket:{id}`, `queue:{service}`, `settings:{service}`), the message is `{"type": ..., ...fields}` without the
id the topic already names. `decode` refuses an unknown type or a malformed field with `EventDecodeError`.

`EventBus.publish` sends; `EventHub` receives. There is ONE `EventHub` per process (created by the
composition root and handed to chat and signaling): a single Redis pattern subscription fanned out to
local listeners. Not one subscription per socket: a Redis connection per signaling session or chat
socket would exhaust the connection pool (and starve REST and chat) long before the process is busy.
Pub/sub may drop events while Redis is away; after resubscribing every listener gets `Resync()` and looks
at the store again. Store scripts that publish their own event (take-next) pass `encode`'s output in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from .keys import Keys
from .models import Outcome, Role

log = logging.getLogger(__name__)


def consultation_topic(cid: str) -> str:
    return f"consultation:{cid}"


def ticket_topic(ticket_id: str) -> str:
    return f"ticket:{ticket_id}"


def queue_topic(service: str) -> str:
    return f"queue:{service}"


def settings_topic(service: str) -> str:
    return f"settings:{service}"


class EventDecodeError(ValueError):
    """A message on an event channel that is not an event this version knows (unknown type, bad field)."""


# --- the events ---------------------------------------------------------------------------------------
# `wire_type` is the message's "type"; `scope` names the topic kind whose id the event carries (not repeated
# in the message). Fields are ids and enum values only.

@dataclass(frozen=True, slots=True)
class QueueChanged:
    """A service's queue changed (a ticket joined, left, was triaged or taken): positions may have moved."""

    service: str
    wire_type: ClassVar[str] = "queue_changed"
    scope: ClassVar[str] = "queue"


@dataclass(frozen=True, slots=True)
class TicketCalled:
    """The ticket was taken: its owner is admitted to `consultation_id`."""

    ticket_id: str
    consultation_id: str
    wire_type: ClassVar[str] = "called"
    scope: ClassVar[str] = "ticket"


@dataclass(frozen=True, slots=True)
class TicketChannelChanged:
    """The owner continues the waiting ticket on another channel (e.g. phone)."""

    ticket_id: str
    wire_type: ClassVar[str] = "channel_changed"
    scope: ClassVar[str] = "ticket"


@dataclass(frozen=True, slots=True)
class ConsultationChanged:
    """State or participants changed (opened, active, someone joined): look again."""

    consultation_id: str
    wire_type: ClassVar[str] = "changed"
    scope: ClassVar[str] = "consultation"


@dataclass(frozen=True, slots=True)
class Knocked:
    """Someone waits in the lobby; hosts read who it is from the store."""

    consultation_id: str
    participant_id: str
    role: Role
    wire_type: ClassVar[str] = "knock"
    scope: ClassVar[str] = "consultation"


@dataclass(frozen=True, slots=True)
class ParticipantDecided:
    """A host admitted or denied someone from the lobby (on the wire: `admitted` or `denied`)."""

    consultation_id: str
    participant_id: str
    admitted: bool
    scope: ClassVar[str] = "consultation"

    @property
    def wire_type(self) -> str:
        return "admitted" if self.admitted else "denied"


@dataclass(frozen=True, slots=True)
class ConsultationEnded:
    consultation_id: str
    outcome: Outcome | None
    wire_type: ClassVar[str] = "ended"
    scope: ClassVar[str] = "consultation"


@dataclass(frozen=True, slots=True)
class ChatMessageStored:
    """A chat message was stored (by id: every process reads it from the stream); `skip_sid` is the sender's
    socket, which has its ack instead."""

    consultation_id: str
    message_id: str
    skip_sid: str | None = None
    wire_type: ClassVar[str] = "chat_message"
    scope: ClassVar[str] = "consultation"


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """An admin changed a service's runtime settings (opening hours, closures): drop cached copies."""

    service: str
    wire_type: ClassVar[str] = "settings_changed"
    scope: ClassVar[str] = "settings"


@dataclass(frozen=True, slots=True)
class Resync:
    """Local only, never on the wire: events may have been lost (the hub resubscribed, or a consumer fell
    behind); look at the store again."""


Event = (QueueChanged | TicketCalled | TicketChannelChanged | ConsultationChanged | Knocked | ParticipantDecided
         | ConsultationEnded | ChatMessageStored | SettingsChanged)
Listener = Callable[[Event | Resync], None]
RESYNC = Resync()


def topic_of(event: Event) -> str:
    """The topic an event is published on (its scope and the id it names)."""
    match event:
        case QueueChanged(service=s) | SettingsChanged(service=s):
            return f"{event.scope}:{s}"
        case TicketCalled(ticket_id=t) | TicketChannelChanged(ticket_id=t):
            return ticket_topic(t)
        case _:
            return consultation_topic(event.consultation_id)


def encode(event: Event) -> tuple[str, str]:
    """(topic, message) of an event: the message is JSON with "type" and the fields the topic does not name."""
    body: dict[str, Any] = {"type": event.wire_type}
    match event:
        case TicketCalled():
            body["consultation_id"] = event.consultation_id
        case Knocked():
            body.update(participant_id=event.participant_id, role=event.role.value)
        case ParticipantDecided():
            body["participant_id"] = event.participant_id
        case ConsultationEnded():
            body["outcome"] = event.outcome.value if event.outcome else None
        case ChatMessageStored():
            body["id"] = event.message_id
            body["skip_sid"] = event.skip_sid
    return topic_of(event), json.dumps(body)


def _field(d: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = d.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise EventDecodeError(f"event field {name} missing or not a string")
    return value


def decode(topic: str, message: str | bytes) -> Event:
    """The event a message on `topic` stands for. EventDecodeError for anything else (an unknown type, a missing or
    mistyped field, a type on the wrong topic, not JSON)."""
    try:
        d = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        raise EventDecodeError("event message is not JSON") from None
    if not isinstance(d, dict) or not isinstance(d.get("type"), str):
        raise EventDecodeError("event message has no type")
    scope, _, sid = topic.partition(":")
    if not sid:
        raise EventDecodeError("event topic names no id")
    kind = d["type"]
    try:
        event = _DECODERS[(scope, kind)](sid, d)
    except KeyError:
        raise EventDecodeError(f"unknown event type {kind[:40]!r} on a {scope[:20]!r} topic") from None
    except ValueError as exc:  # an enum value this version does not know
        raise EventDecodeError(f"bad event field: {type(exc).__name__}") from None
    return event


_DECODERS: dict[tuple[str, str], Callable[[str, dict[str, Any]], Event]] = {
    ("queue", "queue_changed"): lambda s, d: QueueChanged(s),
    ("settings", "settings_changed"): lambda s, d: SettingsChanged(s),
    ("ticket", "called"): lambda t, d: TicketCalled(t, _field(d, "consultation_id")),
    ("ticket", "channel_changed"): lambda t, d: TicketChannelChanged(t),
    ("consultation", "changed"): lambda c, d: ConsultationChanged(c),
    ("consultation", "knock"): lambda c, d: Knocked(c, _field(d, "participant_id"), Role(_field(d, "role"))),
    ("consultation", "admitted"): lambda c, d: ParticipantDecided(c, _field(d, "participant_id"), True),
    ("consultation", "denied"): lambda c, d: ParticipantDecided(c, _field(d, "participant_id"), False),
    ("consultation", "ended"): lambda c, d: ConsultationEnded(
        c, Outcome(o) if (o := _field(d, "outcome", optional=True)) else None),
    ("consultation", "chat_message"): lambda c, d: ChatMessageStored(c, _field(d, "id"),
                                                                     _field(d, "skip_sid", optional=True)),
}


def channel_of(tenant: str, event: Event) -> tuple[str, str]:
    """(Redis channel, message) to publish an event on, e.g. from a pipeline or a script."""
    topic, message = encode(event)
    return Keys(tenant).events(topic), message


class EventBus:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def publish(self, tenant: str, *events: Event) -> None:
        """Publish events (several in one round trip, except on a Redis Cluster, whose pipelines refuse PUBLISH)."""
        if len(events) == 1 or isinstance(self._r, RedisCluster):
            for event in events:
                await self._r.publish(*channel_of(tenant, event))
            return
        async with self._r.pipeline(transaction=False) as p:
            for event in events:
                p.publish(*channel_of(tenant, event))
            await p.execute()


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
        self.undecodable = 0  # messages on an event channel that were no known event (a newer deploy's?)

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
    def inbox(self, tenant: str, topic: str, maxsize: int = 64) -> Iterator[asyncio.Queue[Event | Resync]]:
        """A queue of one topic's events for one async consumer (a signaling session). A consumer that falls
        `maxsize` events behind gets a single resync instead of an unbounded backlog."""
        queue: asyncio.Queue[Event | Resync] = asyncio.Queue(maxsize)

        def put(event: Event | Resync) -> None:
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

    def _dispatch(self, key: tuple[str, str], event: Event | Resync) -> None:
        for listener in list(self._listeners.get(key, ())):
            try:
                listener(event)
            except Exception as exc:  # the type only
                log.error("an event listener failed: %s", type(exc).__name__)

    def deliver(self, tenant: str, topic: str, message: str | bytes) -> None:
        """Hand one wire message to the listeners of its topic; one that is no known event is counted and
        dropped (the listeners would not know what to do with it)."""
        key = (tenant, topic)
        if key not in self._listeners:
            return
        try:
            event = decode(topic, message)
        except EventDecodeError as exc:
            self.undecodable += 1
            log.warning("dropped an event message: %s", exc)
            return
        self._dispatch(key, event)

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
                    if m:
                        self.deliver(m["tenant"], m["topic"], msg["data"])
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
