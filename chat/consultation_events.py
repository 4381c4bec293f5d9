"""What a consultation's events become on this process's sockets: a stored chat message (announced by id,
fetched from the stream and delivered in order), a knock (to the hosts), the end (outcome hidden from guests).

One hub subscription per consultation per process, counted over the connections that joined it. Nothing here puts
text or names on Redis pub/sub: a message and a knock travel by id, and every process reads them from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from rooms.events import ChatMessageStored, ConsultationEnded, Event, Knocked, Resync, consultation_topic
from rooms.models import Role

from .context import ChatContext
from .messages import valid_stream_id
from .session import consultation_room, host_room

log = logging.getLogger(__name__)


class ConsultationEvents:
    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx
        self._watches: dict[tuple[str, str], tuple[int, Callable[[], None]]] = {}  # -> (joined sockets, remove)
        self._deliveries: dict[tuple[str, str], asyncio.Future[Any]] = {}  # the last message being delivered

    def watch(self, tenant: str, cid: str) -> None:
        """A socket on this process joined the consultation."""
        key = (tenant, cid)
        if key in self._watches:
            n, remove = self._watches[key]
            self._watches[key] = (n + 1, remove)
            return

        def on_event(event: Event | Resync) -> None:
            if isinstance(event, ChatMessageStored) and valid_stream_id(event.message_id):
                self._deliver_soon(tenant, cid, event.message_id, event.skip_sid)
            elif isinstance(event, Knocked):
                self._ctx.spawn(self._knock(tenant, cid, event.participant_id))
            elif isinstance(event, ConsultationEnded):
                self._ended(tenant, cid, event.outcome.value if event.outcome else None)

        self._watches[key] = (1, self._ctx.hub.add(tenant, consultation_topic(cid), on_event))

    def unwatch(self, tenant: str, cid: str) -> None:
        """A socket on this process left the consultation (or disconnected)."""
        key = (tenant, cid)
        if key not in self._watches:
            return
        n, remove = self._watches[key]
        if n <= 1:
            remove()
            del self._watches[key]
        else:
            self._watches[key] = (n - 1, remove)

    # --- chat messages ----------------------------------------------------------------------------

    async def announce_message(self, tenant: str, cid: str, message_id: str, skip_sid: str) -> None:
        """Tell every process that a message was stored -- by its id only: each fetches and opens it from the
        stream and sends it to its own sockets in the consultation (`_deliver`). Text and names never travel on
        Redis pub/sub. Best effort like every broadcast: clients resync with `history`."""
        try:
            async with self._ctx.broadcasts:
                await self._ctx.store.events.publish(tenant, ChatMessageStored(cid, message_id, skip_sid))
        except Exception as exc:
            log.warning("announcing a message failed: %s", type(exc).__name__)

    def _deliver_soon(self, tenant: str, cid: str, message_id: str, skip_sid: str | None) -> None:
        key = (tenant, cid)
        task = asyncio.ensure_future(self._deliver(tenant, cid, message_id, skip_sid, self._deliveries.get(key)))
        self._deliveries[key] = task
        self._ctx.tasks.add(task)
        task.add_done_callback(lambda t: self._delivered(key, t))

    async def _deliver(self, tenant: str, cid: str, message_id: str, skip_sid: str | None,
                       before: asyncio.Future[Any] | None) -> None:
        """Fetch an announced message and send it to this process's sockets in the consultation, after the
        message announced before it (announcements arrive in stream order; fetches may finish out of order)."""
        try:
            msg = await self._ctx.chat.messages.one(tenant, cid, message_id)
        except Exception as exc:  # the type only: never content
            log.warning("fetching an announced message failed: %s", type(exc).__name__)
            msg = None
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        if msg is not None:
            await self._ctx.sio.emit("message", msg.public(), room=consultation_room(tenant, cid), skip_sid=skip_sid,
                                     ignore_queue=True)

    def _delivered(self, key: tuple[str, str], task: asyncio.Future[Any]) -> None:
        self._ctx.tasks.discard(task)
        if self._deliveries.get(key) is task:
            del self._deliveries[key]

    # --- knock, ended -----------------------------------------------------------------------------

    async def _knock(self, tenant: str, cid: str, participant_id: str) -> None:
        """A knock announced by id: the display name comes from the store (it never travels on pub/sub)."""
        try:
            p = (await self._ctx.store.consultations.get(tenant, cid)).participant(participant_id)
        except Exception as exc:
            log.warning("reading a knocking participant failed: %s", type(exc).__name__)
            return
        if p is not None:
            payload = {"consultation_id": cid, "participant_id": p.id, "role": p.role.value,
                       "display_name": p.display_name}
            await self._ctx.sio.emit("knock", payload, room=host_room(tenant, cid), ignore_queue=True)

    def _ended(self, tenant: str, cid: str, outcome: str | None) -> None:
        # The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
        ctx = self._ctx
        guests = [sid for sid, sess in ctx.sessions.items() if cid in sess.joined
                  and sess.joined[cid].role in (Role.INTERPRETER, Role.RELATIVE)]
        ctx.spawn(ctx.sio.emit("ended", {"consultation_id": cid, "outcome": outcome},
                               room=consultation_room(tenant, cid), skip_sid=guests or None, ignore_queue=True))
        for sid in guests:
            ctx.spawn(ctx.sio.emit("ended", {"consultation_id": cid, "outcome": None}, to=sid, ignore_queue=True))
