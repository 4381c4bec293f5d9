"""One entry point for every credential a client may present: a JWT (OIDC, dev, session) or an invite.

An invite is spent on first use: its holder becomes a participant (lobby or admitted) and gets a
session token bound to that consultation, for reconnects and for chat. Used by the signaling
WebSocket and handed to the chat server, so both accept the same credentials.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from rooms.audit import Action
from rooms.invites import parse_token
from rooms.models import Participant, ParticipantState, Principal

from .appkeys import AUTH, STORE
from .lobby import announce_knock


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    session_token: str | None = None  # set when an invite was just spent
    participant: Participant | None = None


async def identify(app: web.Application, token: str, display_name: str = "") -> Identity:
    """Verify a JWT or spend an invite. Raises AuthError or a domain error (Gone for a used invite)."""
    if parse_token(token) is None:
        return Identity(await app[AUTH].verify(token))
    store = app[STORE]
    invite = await store.invites.peek(token)
    subject = "guest:" + secrets.token_urlsafe(12)
    name = display_name.strip()[:80] or invite.role.value
    invite, participant = await store.invites.redeem(token, subject=subject, display_name=name)
    principal = Principal(subject=subject, role=invite.role, tenant=invite.tenant, name=name,
                          issuer="invite", consultation_id=invite.consultation_id,
                          participant_id=participant.id)
    await store.audit.record(invite.tenant, Action.INVITE_REDEEMED, actor=subject, role=invite.role,
                             consultation_id=invite.consultation_id, participant_id=participant.id)
    if participant.state == ParticipantState.LOBBY:
        await announce_knock(store, invite.tenant, invite.consultation_id, participant)
    session = app[AUTH].issue_session_token(principal, invite.consultation_id, participant.id)
    return Identity(principal, session, participant)
