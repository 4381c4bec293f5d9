"""One Socket.IO connection's state, and the field checks every chat event shares."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rooms.models import STAFF_ROLES, Participant, Principal

from .errors import ChatError
from .messages import valid_stream_id

if TYPE_CHECKING:
    from .queue_events import TicketWatch

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HOST_ROLES = STAFF_ROLES  # get knock events for consultations they joined


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    session_token: str | None = None  # set when an invite was spent on connect


Identify = Callable[[str, str], Awaitable[Authenticated]]  # raises ChatError when refused


@dataclass
class Session:
    principal: Principal
    session_token: str | None
    joined: dict[str, Participant] = field(default_factory=dict)  # consultation id -> me there
    watching: dict[str, TicketWatch] = field(default_factory=dict)  # ticket id -> watch
    last_typing: float = 0.0
    # python-socketio runs each event in its own task: without this, two messages sent back to back on one
    # connection could be stored in the other order.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)

    def me(self, cid: str) -> Participant:
        """Who this connection is in a consultation it joined (later events need the join)."""
        me = self.joined.get(cid)
        if me is None:
            raise ChatError("not_joined", "Bli med i konsultasjonen (join) først.")
        return me


Handler = Callable[[str, Session, dict[str, Any]], Awaitable[dict[str, Any]]]  # (sid, session, event) -> ack


def consultation_room(tenant: str, cid: str) -> str:
    """Every socket that joined the consultation."""
    return f"c:{tenant}:{cid}"


def host_room(tenant: str, cid: str) -> str:
    """The staff sockets of the consultation (knocks go there)."""
    return f"h:{tenant}:{cid}"


def obj(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ChatError("invalid_event", "Hendelsen må være et JSON-objekt.")
    return data


def ident(d: dict[str, Any], name: str) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not ID.match(v):
        raise ChatError("invalid_event", f"Feltet {name} mangler eller er ugyldig.")
    return v


def cursor(d: dict[str, Any], name: str, required: bool = False) -> str | None:
    v = d.get(name)
    if v is None and not required:
        return None
    if not valid_stream_id(v):
        raise ChatError("invalid_event", f"Feltet {name} må være en meldings-id (som 1700000000000-0).")
    return v
