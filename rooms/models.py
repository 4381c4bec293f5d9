"""The vocabulary of DESIGN.md as types: roles, priorities, channels, outcomes, tickets, consultations."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Role(StrEnum):
    CITIZEN = "citizen"
    CLINICIAN = "clinician"
    NURSE = "nurse"
    OPERATOR = "operator"
    INTERPRETER = "interpreter"
    RELATIVE = "relative"
    ADMIN = "admin"
    BOOKING = "booking"  # a booking system (client credentials) creating scheduled consultations


STAFF_ROLES = frozenset({Role.CLINICIAN, Role.NURSE, Role.OPERATOR})


class Priority(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"

    @property
    def rank(self) -> int:
        """Lower rank is served first."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.RED: 0, Priority.YELLOW: 1, Priority.GREEN: 2}


class Channel(StrEnum):
    VIDEO = "video"
    CHAT = "chat"
    PHONE = "phone"


class TicketState(StrEnum):
    WAITING = "waiting"
    TAKEN = "taken"
    LEFT = "left"
    ABANDONED = "abandoned"


class ConsultationState(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    ACTIVE = "active"
    ENDED = "ended"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    PHYSICAL_FOLLOWUP = "physical-followup"
    REFERRED = "referred"
    EMERGENCY = "emergency"
    NO_SHOW = "no-show"


class ParticipantState(StrEnum):
    ADMITTED = "admitted"
    LOBBY = "lobby"
    DENIED = "denied"


@dataclass(slots=True)
class Ticket:
    id: str
    tenant: str
    service: str
    owner: str  # subject of the citizen (or nurse) who queued
    owner_role: str
    owner_name: str
    channel: Channel
    reason: str
    priority: Priority
    enqueued_at: float
    state: TicketState
    callback_phone: str | None = None
    consultation_id: str | None = None
    taken_by: str | None = None
    disconnected_at: float | None = None
    taken_seq: int | None = None  # order in which tickets of a service were taken
    owner_offline_s: float | None = None  # how long the owner had been offline when the ticket was taken

    @classmethod
    def from_redis(cls, h: dict[str, str]) -> Ticket:
        return cls(
            id=h["id"],
            tenant=h["tenant"],
            service=h["service"],
            owner=h["owner"],
            owner_role=h.get("owner_role", Role.CITIZEN),
            owner_name=h.get("owner_name", ""),
            channel=Channel(h["channel"]),
            reason=h.get("reason", ""),
            priority=Priority(h["priority"]),
            enqueued_at=float(h["enqueued_at"]),
            state=TicketState(h["state"]),
            callback_phone=h.get("callback_phone") or None,
            consultation_id=h.get("consultation_id") or None,
            taken_by=h.get("taken_by") or None,
            disconnected_at=float(h["disconnected_at"]) if h.get("disconnected_at") else None,
            taken_seq=int(h["taken_seq"]) if h.get("taken_seq") else None,
            owner_offline_s=float(h["owner_offline_s"]) if h.get("owner_offline_s") else None,
        )

    def to_redis(self) -> dict[str, str]:
        return {k: ("" if v is None else str(v)) for k, v in asdict(self).items()}


@dataclass(slots=True)
class Participant:
    id: str
    subject: str
    role: Role
    display_name: str
    state: ParticipantState
    joined_at: float
    history_from: float | None = None  # sees chat from this time on (None: the whole conversation)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Participant:
        d = json.loads(raw)
        return cls(
            id=d["id"],
            subject=d["subject"],
            role=Role(d["role"]),
            display_name=d["display_name"],
            state=ParticipantState(d["state"]),
            joined_at=d["joined_at"],
            history_from=d.get("history_from"),
        )

    def public(self) -> dict[str, object]:
        return {"id": self.id, "role": self.role.value, "display_name": self.display_name,
                "state": self.state.value}


@dataclass(slots=True)
class Consultation:
    id: str
    tenant: str
    service: str
    state: ConsultationState
    created_at: float
    created_by: str
    scheduled_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    outcome: Outcome | None = None
    ticket_id: str | None = None
    channel: Channel = Channel.VIDEO
    participants: list[Participant] = field(default_factory=list)

    @classmethod
    def from_redis(cls, h: dict[str, str], participants: list[Participant]) -> Consultation:
        def opt_float(key: str) -> float | None:
            return float(h[key]) if h.get(key) else None

        return cls(
            id=h["id"],
            tenant=h["tenant"],
            service=h["service"],
            state=ConsultationState(h["state"]),
            created_at=float(h["created_at"]),
            created_by=h["created_by"],
            scheduled_at=opt_float("scheduled_at"),
            started_at=opt_float("started_at"),
            ended_at=opt_float("ended_at"),
            outcome=Outcome(h["outcome"]) if h.get("outcome") else None,
            ticket_id=h.get("ticket_id") or None,
            channel=Channel(h.get("channel") or Channel.VIDEO),
            participants=sorted(participants, key=lambda p: p.joined_at),
        )

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.id == participant_id), None)

    def participant_for(self, subject: str) -> Participant | None:
        return next((p for p in self.participants if p.subject == subject), None)

    def is_admitted(self, subject: str) -> bool:
        p = self.participant_for(subject)
        return p is not None and p.state == ParticipantState.ADMITTED


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, as established by a verified token. `consultation_id` set: a session or invite
    principal that may act on that one consultation only."""

    subject: str
    role: Role
    tenant: str
    name: str = ""
    issuer: str = ""
    consultation_id: str | None = None
    participant_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES
