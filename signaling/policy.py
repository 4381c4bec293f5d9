"""Who may do what: the one place for the rules the route table, the invite route and the tests share.

- HOSTS may end a consultation, invite, admit, deny, send an SMS link and export the transcript, and only
  when logged in with their own identity (never through an invite: `is_host`).
- INVITE_POLICY: which role may invite which role. Staff roles (STAFF_INVITEES) are never granted by the
  invite itself: a clinician or nurse logs in with their own identity and then accepts the invite, which
  binds them to the consultation (`POST /api/v1/invites/{token}/accept`). Guests (citizen, interpreter,
  relative) spend the invite anonymously and get a session token without host powers.
docs/security.md shows these tables; tests/api/test_access_matrix.py checks them route by route.
"""

from __future__ import annotations

from rooms.models import STAFF_ROLES, Principal, Role

from .config import Config

INVITE_ISSUER = "invite"  # Principal.issuer of a guest who spent an invite (and of its session tokens)

HOSTS = STAFF_ROLES  # clinician, nurse, operator: every staff role hosts
STAFF_INVITEES = frozenset({Role.CLINICIAN, Role.NURSE})
GUEST_INVITEES = frozenset({Role.CITIZEN, Role.INTERPRETER, Role.RELATIVE})

INVITE_POLICY: dict[Role, frozenset[Role]] = {
    Role.CLINICIAN: frozenset({Role.CITIZEN, Role.INTERPRETER, Role.RELATIVE, Role.CLINICIAN, Role.NURSE}),
    Role.NURSE: frozenset({Role.CITIZEN, Role.INTERPRETER, Role.RELATIVE, Role.CLINICIAN, Role.NURSE}),
    Role.OPERATOR: frozenset({Role.CITIZEN, Role.INTERPRETER, Role.RELATIVE}),
}


def is_host(principal: Principal) -> bool:
    """A host role, logged in with its own identity (a guest's invite never carries host powers)."""
    return principal.role in HOSTS and principal.issuer != INVITE_ISSUER


def may_invite(inviter: Role, invitee: Role) -> bool:
    return invitee in INVITE_POLICY.get(inviter, frozenset())


def may_accept(principal: Principal, invitee: Role) -> bool:
    """A staff invite is accepted only by a logged-in principal of exactly that role."""
    return invitee in STAFF_INVITEES and principal.role == invitee and principal.issuer != INVITE_ISSUER


def public_base(config: Config) -> str:
    """The base of every link we hand out: `public_url`, else the configured own address (never the
    request's Host header, which the caller chooses). Production refuses to start without public_url."""
    return (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")
