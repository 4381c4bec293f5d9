"""The use cases of rooms/ (`Rooms`, reached as `Store.rooms`): one operation per thing a person does.

Each operation makes its store change, the audit entry recording it and the event announcing it together, so
the REST routes, the signaling WebSocket and the chat only parse, call and render. Where it can, the change,
its entry, its statistics counters and its event are one Lua script (queue operations); elsewhere the change
and its entry are one script or transaction and the event follows it. Events are ids only (rooms/events.py).

    join_queue, leave_queue, set_priority, switch_channel, take_next, abandon_expired   (tickets)
    create_consultation, knock, decide, redeem_invite, entered_room, end               (consultations)
    reschedule_booking, cancel_booking, end_no_shows                                   (booked slots)

Errors are the domain errors of rooms/errors.py (Conflict, NotFound, Forbidden, Gone, RateLimited,
ServiceClosed, Unavailable), which each front end maps to its wire in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .audit import SYSTEM, Action, Audit
from .bookings import Booking
from .errors import Forbidden, ServiceClosed
from .events import (
    ConsultationChanged,
    ConsultationEnded,
    Knocked,
    ParticipantDecided,
    QueueChanged,
    TicketChannelChanged,
)
from .invites import Invite
from .models import (
    Channel,
    Consultation,
    Outcome,
    Participant,
    ParticipantState,
    Principal,
    Priority,
    Role,
    Ticket,
)
from .queue import TERMINAL_TTL_S, Place, switch_channel
from .ratelimit import RateSlot
from .tenants import Service, Tenant, closed_message

if TYPE_CHECKING:
    from .store import Store

READ_AUDIT_WINDOW_S = 900  # one ticket.read per staff member and ticket per quarter hour (the list is polled)
KNOCKS_PER_MINUTE = 20  # per consultation, whoever knocks: a clinician's lobby list cannot be flooded
CREATOR_ADMITTED = (Role.CLINICIAN, Role.NURSE, Role.OPERATOR)  # a booking system creating a slot is not in it


@dataclass(frozen=True, slots=True)
class Queued:
    ticket: Ticket
    place: Place


def _audit(who: Principal) -> Audit:
    return Audit(who.subject, who.role)


class Rooms:
    def __init__(self, store: Store) -> None:
        # The store's parts are looked up on each call (tests swap some, e.g. the rate limiter's clock).
        self._s = store

    def _rate(self, who: Principal, bucket: str, per_minute: int | None) -> RateSlot | None:
        """`who`'s fixed-window limit in `bucket` (the same counter as RateLimiter.hit), for a script to count."""
        if per_minute is None:
            return None
        return self._s.rate.slot(who.tenant, who.subject, bucket, limit=per_minute, window_s=60)

    # --- tickets ------------------------------------------------------------------------------------------

    async def join_queue(self, who: Principal, tenant: Tenant, service: Service, *, channel: Channel, reason: str,
                         callback_phone: str | None = None, priority: Priority = Priority.GREEN,
                         writes_per_minute: int | None = None) -> Queued:
        """Queue `who` in `service` if it is open now (runtime opening hours and closures apply; ServiceClosed
        says when it opens and where to call). A citizen waits in one queue of the tenant at a time; a nurse
        may ask for doctors for several patients. One round trip: `who`'s write limit (RateLimited), the join,
        `ticket.joined`, the counters, the place and QueueChanged are one script (the runtime settings are
        cached)."""
        current = await self._s.service_settings.applied(tenant, service)
        now = datetime.fromtimestamp(self._s.clock(), UTC)
        if not current.opening_hours.is_open(now):
            raise ServiceClosed(closed_message(tenant, current, now))
        ticket, place = await self._s.queue.enqueue(
            tenant.id, service.id, owner=who.subject, owner_role=who.role, owner_name=who.name, channel=channel,
            reason=reason, callback_phone=callback_phone, priority=priority, audit=_audit(who),
            exclusive_of=[s.id for s in tenant.services] if who.role == Role.CITIZEN else (),
            median_consultation_s=service.median_consultation_s, rate=self._rate(who, "write", writes_per_minute))
        return Queued(ticket, place)

    async def leave_queue(self, who: Principal, ticket: Ticket) -> None:
        """The ticket stops waiting (`ticket.left`, QueueChanged, in one script); Conflict when it no longer waits."""
        await self._s.queue.leave(ticket, audit=_audit(who))

    async def set_priority(self, who: Principal, ticket: Ticket, priority: Priority) -> Ticket:
        """Triage: the ticket keeps its enqueue time (`ticket.priority`, QueueChanged, in one script)."""
        return await self._s.queue.set_priority(ticket, priority, audit=_audit(who))

    async def switch_channel(self, who: Principal, ticket: Ticket, channel: Channel,
                             callback_phone: str | None) -> Ticket:
        """The owner continues a waiting ticket on another channel (`ticket.channel` in the same script)."""
        ticket = await switch_channel(self._s.queue, ticket, channel, callback_phone, audit=_audit(who))
        await self._s.events.publish(ticket.tenant, QueueChanged(ticket.service), TicketChannelChanged(ticket.id))
        return ticket

    async def tickets_read(self, who: Principal, tickets: list[Ticket]) -> None:
        """Staff read these tickets' personal data (reason, name, phone): `ticket.read` once per reader, ticket and
        READ_AUDIT_WINDOW_S, indexed under each ticket's owner for their access log (an owner reading their own
        ticket is not recorded)."""
        await self._s.audit.record_reads(who.tenant, Action.TICKET_READ, actor=who.subject, role=who.role,
                                         tickets=[(t.id, t.owner) for t in tickets if t.owner != who.subject],
                                         window_s=READ_AUDIT_WINDOW_S, index_ttl_s=TERMINAL_TTL_S)

    async def take_next(self, who: Principal, service_id: str,
                        takes_per_minute: int | None = None) -> tuple[Ticket, Consultation] | None:
        """The next ticket (priority, then age, its owner present) opens a consultation with `who` and its owner
        admitted; `who`'s take limit (RateLimited), `ticket.taken`, the counters, the consultation's media node (the
        least-loaded live one, when this process is a node), QueueChanged, TicketCalled and ConsultationChanged
        are the same script. None when the queue is empty."""
        nodes = self._s.nodes
        node = await nodes.choose() if nodes else None  # the new consultation's media node, recorded by the script
        taken = await self._s.queue.take_next(who.tenant, service_id, clinician=who.subject, clinician_role=who.role,
                                              clinician_name=who.name, audit=_audit(who),
                                              rate=self._rate(who, "take", takes_per_minute),
                                              place_on=node.id if node else None)
        if taken and nodes and node:
            nodes.placed(who.tenant, taken[1].id, node.id)
        return taken

    async def abandon_expired(self, tenant: str, grace_s: float) -> list[Ticket]:
        """Tickets whose owner stayed away longer than `grace_s` are dropped (`ticket.abandoned` by the system and
        QueueChanged, each in its ticket's script)."""
        return await self._s.queue.abandon_expired(tenant, grace_s, audit=SYSTEM)

    # --- consultations ------------------------------------------------------------------------------------

    async def create_consultation(self, who: Principal, tenant: str, service: str, *, scheduled_at: float | None,
                                  channel: Channel, citizen: str | None = None) -> Consultation:
        """A consultation with its creator admitted (a booking system is not a participant; it may name the
        `citizen` it is for, who is then admitted too); `consultation.created` in the same transaction."""
        s = self._s
        c = await s.consultations.create(tenant, service, creator=who.subject, creator_role=who.role,
                                         creator_name=who.name, scheduled_at=scheduled_at, channel=channel,
                                         audit=True)
        if citizen:
            await s.consultations.add_participant(tenant, c.id, subject=citizen, role=Role.CITIZEN,
                                                  display_name="", state=ParticipantState.ADMITTED)
            c = await s.consultations.get(tenant, c.id)
        return c

    async def knock(self, who: Principal, cid: str) -> Participant:
        """Put `who` in the lobby (someone already present keeps the place they have) and tell the hosts.

        Denied once, denied for good (Forbidden `denied`, nothing announced); new knocks on one consultation are
        rate-limited (RateLimited). The knock and `consultation.knocked` are one script, then Knocked."""
        s = self._s
        existing = (await s.consultations.get(who.tenant, cid)).participant_for(who.subject)
        if existing is not None:
            if existing.state == ParticipantState.DENIED:
                raise Forbidden("Du ble ikke sluppet inn i denne konsultasjonen.", code="denied")
            return existing
        await s.rate.hit(who.tenant, f"consultation:{cid}", "knock", limit=KNOCKS_PER_MINUTE, window_s=60)
        participant = await s.consultations.add_participant(who.tenant, cid, subject=who.subject, role=who.role,
                                                            display_name=who.name, state=ParticipantState.LOBBY,
                                                            audit=True)
        await s.events.publish(who.tenant, Knocked(cid, participant.id, participant.role))
        return participant

    async def decide(self, who: Principal, cid: str, participant_id: str, admit: bool) -> Participant:
        """A host admits or denies someone waiting in the lobby (`consultation.admitted`/`denied` in the same
        script), then ParticipantDecided. NotFound / Conflict `not_in_lobby` / `consultation_ended`."""
        p = await self._s.consultations.decide(who.tenant, cid, participant_id, admit, audit=_audit(who))
        await self._s.events.publish(who.tenant, ParticipantDecided(cid, p.id, admit))
        return p

    async def redeem_invite(self, token: str, *, subject: str, display_name: str,
                            holder_role: Role) -> tuple[Invite, Participant]:
        """Spend an invite: its holder joins its consultation (lobby or admitted) and `invite.redeemed` is recorded,
        in one script; the hosts hear a Knocked when the holder waits in the lobby. NotFound / Gone / Conflict."""
        s = self._s
        invite, participant = await s.invites.redeem(token, subject=subject, display_name=display_name,
                                                     audit_role=holder_role.value)
        if participant.state == ParticipantState.LOBBY:
            await s.events.publish(invite.tenant, Knocked(invite.consultation_id, participant.id, participant.role))
        return invite, participant

    async def entered_room(self, who: Principal, cid: str, in_room: int) -> None:
        """`who` is in the consultation's media room (with `in_room` people now): `consultation.joined`; a booked
        slot opens, a second person starts the consultation; ConsultationChanged when its state moved."""
        s = self._s
        await s.audit.record(who.tenant, Action.CONSULTATION_JOINED, actor=who.subject, role=who.role,
                             consultation_id=cid)
        changed = await s.consultations.open(who.tenant, cid)
        if in_room >= 2:
            changed = await s.consultations.activate(who.tenant, cid) or changed
        if changed:
            await s.events.publish(who.tenant, ConsultationChanged(cid))

    async def end(self, who: Principal, cid: str, outcome: Outcome) -> Consultation:
        """End with an outcome (`consultation.ended` and the counters in the same script), then
        ConsultationEnded; Conflict `consultation_ended` when it already had."""
        c = await self._s.consultations.end(who.tenant, cid, outcome, audit=_audit(who))
        await self._s.events.publish(who.tenant, ConsultationEnded(cid, outcome))
        return c

    # --- booked slots -------------------------------------------------------------------------------------

    async def reschedule_booking(self, who: Principal, booking: Booking, slot_at: float,
                                 no_show_after_s: float) -> Booking:
        """Move a slot (`booking.rescheduled`), then ConsultationChanged."""
        s = self._s
        b = await s.bookings.reschedule(booking, slot_at, no_show_after_s)
        await s.audit.record(b.tenant, Action.BOOKING_RESCHEDULED, actor=who.subject, role=who.role,
                             consultation_id=b.consultation_id)
        await s.events.publish(b.tenant, ConsultationChanged(b.consultation_id))
        return b

    async def cancel_booking(self, who: Principal, booking: Booking) -> None:
        """Cancel a slot that has not started (`booking.cancelled`); it ends without an outcome."""
        s = self._s
        await s.bookings.cancel(booking)
        await s.audit.record(booking.tenant, Action.BOOKING_CANCELLED, actor=who.subject, role=who.role,
                             consultation_id=booking.consultation_id)
        await s.events.publish(booking.tenant, ConsultationEnded(booking.consultation_id, None))

    async def end_no_shows(self, tenant: str) -> list[str]:
        """End unattended slots whose time is up as no-show (`consultation.ended` by the system); returns the ids
        this caller ended (any number of processes may sweep at once: each slot is ended once)."""
        s = self._s
        ended = await s.bookings.end_no_shows(tenant)
        for cid in ended:
            await s.audit.record(tenant, Action.CONSULTATION_ENDED, actor=SYSTEM.actor, role=SYSTEM.role,
                                 consultation_id=cid, outcome=Outcome.NO_SHOW.value)
            await s.events.publish(tenant, ConsultationEnded(cid, Outcome.NO_SHOW))
        return ended
