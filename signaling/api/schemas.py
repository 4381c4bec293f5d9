"""Request and response shapes of the REST API (also the OpenAPI components)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from rooms.models import Channel, Consultation, Outcome, Priority, Role, Ticket

from ..http import Body

PHONE = r"^\+?[0-9][0-9 ]{7,14}$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class DevTokenIn(Body):
    sub: Subject
    role: Role
    tenant: TenantId
    name: Name


class TokenOut(BaseModel):
    token: str


class ServiceOut(BaseModel):
    tenant: str
    tenant_name: str
    service: str
    name: str
    open: bool
    opening_hours: dict[str, str]
    closures: list[date] = []  # Europe/Oslo dates closed all day (holidays)
    channels: list[Channel]
    queue_length: int
    closed_message: str | None


class JoinQueueIn(Body):
    channel: Channel
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    callback_phone: Annotated[str, StringConstraints(pattern=PHONE)] | None = None
    priority: Priority | None = None  # nurses requesting a doctor may set it; citizens may not


class PriorityIn(Body):
    priority: Priority


class TicketOut(BaseModel):
    ticket_id: str
    tenant: str
    service: str
    channel: Channel
    reason: str
    priority: Priority
    state: str
    enqueued_at: float
    position: int | None
    eta_s: int | None
    consultation_id: str | None
    owner_role: Role
    owner_name: str | None = None
    callback_phone: str | None = None
    # Staff view: whether the owner's page is connected now (waiting tickets), since when it is not, and
    # for a taken ticket how long its owner had been offline when it was taken.
    owner_online: bool | None = None
    offline_since: float | None = None
    owner_offline_s: float | None = None


class TakeOut(BaseModel):
    ticket_id: str
    consultation_id: str
    ticket: TicketOut
    consultation: ConsultationOut


class CreateConsultationIn(Body):
    tenant: TenantId
    service: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    scheduled_at: float | None = Field(default=None, gt=0)
    channel: Channel = Channel.VIDEO
    citizen: Subject | None = None  # a booking system pre-authorises the booked citizen


class ParticipantOut(BaseModel):
    id: str
    role: Role
    display_name: str
    state: str


class ConsultationOut(BaseModel):
    id: str
    tenant: str
    service: str
    state: str
    channel: Channel
    created_at: float
    scheduled_at: float | None
    started_at: float | None
    ended_at: float | None
    outcome: Outcome | None
    ticket_id: str | None
    participants: list[ParticipantOut]
    me: str | None  # the caller's participant id, if they are one
    signal_url: str


class EndIn(Body):
    outcome: Outcome


class InviteIn(Body):
    role: Role
    ttl_s: int = Field(default=3600, gt=0)
    lobby: bool = True
    # The chat a relative sees: all of it or from joining (default); an interpreter always from joining.
    history: Literal["all", "from_join"] | None = None


class InviteOut(BaseModel):
    token: str
    url: str
    role: Role
    expires_at: float
    history: Literal["all", "from_join"]


class KnockOut(BaseModel):
    participant_id: str
    state: str


class AccessEntryOut(BaseModel):
    ts: float
    action: str
    actor_role: str
    actor: str | None  # the staff member's id (HelseID); other citizens are not named
    actor_name: str | None = None  # the staff member's name as shown in the consultation
    actor_is_me: bool
    consultation_id: str | None
    ticket_id: str | None = None


def ticket_out(t: Ticket, position: int | None, eta_s: int | None, *, staff_view: bool) -> TicketOut:
    return TicketOut(ticket_id=t.id, tenant=t.tenant, service=t.service, channel=t.channel, reason=t.reason,
                     priority=t.priority, state=t.state.value, enqueued_at=t.enqueued_at, position=position,
                     eta_s=eta_s, consultation_id=t.consultation_id, owner_role=Role(t.owner_role),
                     owner_name=t.owner_name if staff_view else None, callback_phone=t.callback_phone,
                     owner_online=(t.disconnected_at is None) if staff_view and t.state.value == "waiting" else None,
                     offline_since=t.disconnected_at if staff_view else None,
                     owner_offline_s=t.owner_offline_s if staff_view else None)


def consultation_out(c: Consultation, me_subject: str | None) -> ConsultationOut:
    me = c.participant_for(me_subject) if me_subject else None
    return ConsultationOut(
        id=c.id, tenant=c.tenant, service=c.service, state=c.state.value, channel=c.channel,
        created_at=c.created_at, scheduled_at=c.scheduled_at, started_at=c.started_at, ended_at=c.ended_at,
        # The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
        outcome=None if me is not None and me.role in (Role.INTERPRETER, Role.RELATIVE) else c.outcome,
        ticket_id=c.ticket_id,
        participants=[ParticipantOut(id=p.id, role=p.role, display_name=p.display_name, state=p.state.value)
                      for p in c.participants],
        me=me.id if me else None, signal_url=f"/api/v1/consultations/{c.id}/signal")


TakeOut.model_rebuild()
