"""A waiting citizen's place in the queue on the chat connection: `watch_ticket`, then `queue_position` whenever
the position or the estimated wait changes, `called` when a clinician takes the ticket.

Any event on the service's queue or on the ticket makes the watch look at the ticket again (bursts coalesced);
a ticket that no longer waits is no longer watched. When the owner's last watching connection on this process
drops, the ticket keeps its place for the queue grace period (`QueueStore.disconnected`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rooms.errors import DomainError
from rooms.events import queue_topic, ticket_topic
from rooms.models import Ticket, TicketState

from .context import ChatContext
from .errors import ChatError
from .session import Session, ident

log = logging.getLogger(__name__)

MedianConsultation = Callable[[str, str], int]  # (tenant, service) -> seconds, for eta_s
COALESCE_S = 0.02  # a burst of queue changes becomes one look at the ticket


@dataclass
class TicketWatch:
    ticket: Ticket
    remove: list[Callable[[], None]] = field(default_factory=list)
    last: tuple[int | None, int | None] | None = None  # (position, eta_s) last told
    pending: bool = False


class QueueEvents:
    def __init__(self, ctx: ChatContext, median_consultation_s: MedianConsultation) -> None:
        self._ctx = ctx
        self._median = median_consultation_s

    async def watch_ticket(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        store = self._ctx.store
        tid = ident(d, "ticket_id")
        p = s.principal
        try:
            ticket = await store.queue.get(p.tenant, tid)
        except DomainError:
            ticket = None
        if ticket is None or ticket.owner != p.subject:
            raise ChatError("ticket_not_found", "Fant ikke denne plassen i køen.")
        if ticket.state == TicketState.WAITING:
            await store.queue.reconnected(p.tenant, tid)
        if tid not in s.watching and ticket.state == TicketState.WAITING:
            watch = TicketWatch(ticket)
            s.watching[tid] = watch
            hub = self._ctx.hub
            watch.remove.append(hub.add(p.tenant, queue_topic(ticket.service), lambda _e: self._refresh_soon(sid, tid)))
            watch.remove.append(hub.add(p.tenant, ticket_topic(tid), lambda _e: self._refresh_soon(sid, tid)))
        return await self._ticket_state(s, tid, ticket)

    async def dropped(self, s: Session) -> None:
        """The connection closed: stop its watches; a ticket nobody here watches any more keeps its place for the
        grace period."""
        for tid, watch in s.watching.items():
            for remove in watch.remove:
                remove()
            if any(tid in other.watching for other in self._ctx.sessions.values()):
                continue  # another tab of the owner on this process still watches it
            with contextlib.suppress(Exception):
                # The owner's live connection dropped: the ticket keeps its place for the grace period.
                await self._ctx.store.queue.disconnected(watch.ticket.tenant, watch.ticket.id)

    async def _ticket_state(self, s: Session, tid: str, ticket: Ticket) -> dict[str, Any]:
        place = None
        if ticket.state == TicketState.WAITING:
            place = await self._ctx.store.queue.place(ticket, self._median(ticket.tenant, ticket.service))
        position, eta = (place.position, place.eta_s) if place else (None, None)
        watch = s.watching.get(tid)
        if watch:
            watch.last = (position, eta)
        return {"ticket_id": tid, "state": ticket.state.value, "position": position, "eta_s": eta,
                "consultation_id": ticket.consultation_id}

    def _refresh_soon(self, sid: str, tid: str) -> None:
        s = self._ctx.sessions.get(sid)
        watch = s.watching.get(tid) if s else None
        if watch is None or watch.pending:
            return
        watch.pending = True
        self._ctx.spawn(self._refresh(sid, tid))

    async def _refresh(self, sid: str, tid: str) -> None:
        """Look at the ticket again (after any queue or ticket event) and tell the owner what changed."""
        await asyncio.sleep(COALESCE_S)
        s = self._ctx.sessions.get(sid)
        watch = s.watching.get(tid) if s else None
        if s is None or watch is None:
            return
        watch.pending = False
        try:
            ticket = await self._ctx.store.queue.get(watch.ticket.tenant, tid)
            before = watch.last
            state = await self._ticket_state(s, tid, ticket)
        except Exception as exc:
            log.warning("queue position refresh failed: %s", type(exc).__name__)
            return
        emit = self._ctx.emit_local
        if ticket.state == TicketState.TAKEN and ticket.consultation_id:
            await emit("called", {"ticket_id": tid, "consultation_id": ticket.consultation_id}, sid)
        elif ticket.state != TicketState.WAITING or state["position"] is None:
            await emit("queue_position", {**state, "position": None, "eta_s": None}, sid)
        elif (state["position"], state["eta_s"]) != before:
            await emit("queue_position", {"ticket_id": tid, "state": state["state"],
                                          "position": state["position"], "eta_s": state["eta_s"]}, sid)
            return
        else:
            return
        for remove in watch.remove:  # the ticket no longer waits: stop watching it
            remove()
        s.watching.pop(tid, None)
