"""One entry point for every credential a client may present: a JWT (OIDC, dev, session) or an invite.

An invite for a guest role (citizen, interpreter, relative) is spent on first use: its holder becomes a
participant (lobby or admitted) and gets a session token bound to that consultation, for reconnects and
for chat; that token never carries host powers. An invite for a staff role (clinician, nurse) is never
spent anonymously: the invitee logs in with their own identity and accepts it (`accept_invite`), which
binds that identity to the consultation. Used by the REST wrapper, the signaling WebSocket and the chat
server, so all three accept the same credentials and revoke session tokens the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from rooms.errors import Forbidden, NotFound
from rooms.invites import parse_token
from rooms.models import ConsultationState, Participant, ParticipantState, Principal

from . import policy
from .appkeys import AUTH, STORE
from .auth import AuthError


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    session_token: str | None = None  # set when an invite was just spent
    participant: Participant | None = None


async def verify(app: web.Application, token: str) -> Principal:
    """Verify a JWT. A session token is revoked once its consultation ended or its participant was denied:
    checked against the store on every use, so revocation is immediate on every node."""
    principal = await app[AUTH].verify(token)
    if principal.consultation_id is None:
        return principal
    try:
        consultation = await app[STORE].consultations.get(principal.tenant, principal.consultation_id)
    except NotFound:
        raise AuthError("Innloggingen gjelder ikke lenger.", "session_revoked") from None
    if consultation.state == ConsultationState.ENDED:
        raise AuthError("Konsultasjonen er avsluttet.", "consultation_ended")
    me = consultation.participant(principal.participant_id or "")
    if me is None or me.subject != principal.subject:
        raise AuthError("Innloggingen gjelder ikke lenger.", "session_revoked")
    if me.state == ParticipantState.DENIED:
        raise AuthError("Du ble ikke sluppet inn i denne konsultasjonen.", "denied")
    return principal


async def identify(app: web.Application, token: str, display_name: str = "") -> Identity:
    """Verify a JWT or spend a guest invite. Raises AuthError or a domain error (Gone for a used invite)."""
    if parse_token(token) is None:
        return Identity(await verify(app, token))
    store = app[STORE]
    invite = await store.invites.peek(token)
    if invite.role not in policy.GUEST_INVITEES:
        # Staff join with their own identity: log in, then accept the invite (POST /api/v1/invites/{token}/accept).
        raise AuthError("Logg inn med din egen innlogging for å bruke denne invitasjonen.", "login_required")
    subject = "guest:" + secrets.token_urlsafe(12)
    name = display_name.strip()[:80] or invite.role.value
    invite, participant = await store.rooms.redeem_invite(token, subject=subject, display_name=name,
                                                          holder_role=invite.role)  # audited, knock announced
    principal = Principal(subject=subject, role=invite.role, tenant=invite.tenant, name=name,
                          issuer=policy.INVITE_ISSUER, consultation_id=invite.consultation_id,
                          participant_id=participant.id)
    session = app[AUTH].issue_session_token(principal, invite.consultation_id, participant.id)
    return Identity(principal, session, participant)


async def accept_invite(app: web.Application, principal: Principal, token: str) -> tuple[str, Participant]:
    """A logged-in staff member spends a staff invite: their own identity joins the consultation in the
    invite's role (lobby or admitted). Returns (consultation id, participant)."""
    store = app[STORE]
    invite = await store.invites.peek(token)
    if invite.tenant != principal.tenant:
        raise NotFound("Lenken er ukjent. Be om en ny lenke.", code="invite_unknown")
    if not policy.may_accept(principal, invite.role):
        raise Forbidden("Denne invitasjonen gjelder en annen rolle enn din.", code="invite_role_mismatch")
    invite, participant = await store.rooms.redeem_invite(token, subject=principal.subject,
                                                          display_name=principal.name[:80] or invite.role.value,
                                                          holder_role=principal.role)
    return invite.consultation_id, participant
