"""Invites: single-use, expiring capability tokens bound to one consultation and one role.

The token is `nli.<tenant>.<secret>`; only a SHA-256 digest of the secret is stored, so a Redis dump
does not hand out working links. Spending an invite and adding its participant is one script.

What chat an invitee sees (`history`): an interpreter only from joining; a relative as the host chooses when
inviting (default from joining); everyone else the whole conversation. See `history_for`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from .audit import LUA_AUDIT, Action, Audit, audit_keys, queue_append
from .consultations import LUA_PARTICIPANT, new_participant
from .crypto import FieldCipher
from .errors import Conflict, Gone, NotFound
from .keys import Keys
from .models import Participant, ParticipantState, Role
from .redis_types import hash_fields

PREFIX = "nli"
History = Literal["all", "from_join"]
KEEP_AFTER_EXPIRY_S = 86400  # long enough to tell "expired" from "unknown"

# KEYS: invite, consultation, participants, subjects, the holder's consultations, audit stream, consultation audit
# ARGV: now, participant json template, audit entry or ''
_REDEEM = LUA_AUDIT + LUA_PARTICIPANT + """
local inv = redis.call('HGETALL', KEYS[1])
if #inv == 0 then return {err = 'invite_unknown'} end
local h = {}
for i = 1, #inv, 2 do h[inv[i]] = inv[i + 1] end
if h['used'] == '1' then return {err = 'invite_used'} end
if tonumber(h['expires_at']) < tonumber(ARGV[1]) then return {err = 'invite_expired'} end
local state = redis.call('HGET', KEYS[2], 'state')
if not state or state == 'ended' then return {err = 'consultation_ended'} end
local p = cjson.decode(ARGV[2])
if redis.call('HEXISTS', KEYS[4], p['subject']) == 1 then return {err = 'already_participant'} end
p['role'] = h['role']
if h['lobby'] == '1' then p['state'] = 'lobby' else p['state'] = 'admitted' end
if h['history'] == 'from_join' then p['history_from'] = tonumber(ARGV[1]) end
redis.call('HSET', KEYS[1], 'used', '1', 'used_at', ARGV[1], 'participant_id', p['id'])
local raw = add_participant(KEYS[3], KEYS[4], KEYS[5], redis.call('HGET', KEYS[2], 'id'), p)
audit_append(KEYS[6], KEYS[7], ARGV[3])
return raw
"""

_MESSAGES = {
    "invite_unknown": (NotFound, "Lenken er ukjent. Be om en ny lenke."),
    "invite_used": (Gone, "Lenken er allerede brukt. Be om en ny lenke."),
    "invite_expired": (Gone, "Lenken er utløpt. Be om en ny lenke."),
    "consultation_ended": (Gone, "Konsultasjonen er avsluttet."),
    "already_participant": (Conflict, "Du er allerede med i denne konsultasjonen."),
}


@dataclass(frozen=True, slots=True)
class Invite:
    token: str
    tenant: str
    consultation_id: str
    role: Role
    lobby: bool
    expires_at: float
    history: History = "all"
    used: bool = False  # spent: the preview says so (a reload of the holder goes on with its own token)


def history_for(role: Role, requested: History | None) -> History:
    """The chat an invitee of `role` sees: an interpreter from joining only (the host cannot widen it); a
    relative as the host asks (default from joining); others (patient, clinician, nurse) the whole conversation."""
    if role == Role.INTERPRETER:
        return "from_join"
    if role == Role.RELATIVE:
        return requested or "from_join"
    return "all"


def parse_token(token: str) -> tuple[str, str] | None:
    """(tenant, secret) of a well-formed invite token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or len(parts[2]) < 20:
        return None
    return parts[1], parts[2]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class InviteStore:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time,
                 cipher: FieldCipher | None = None) -> None:
        self._r = redis
        self._clock = clock
        self.cipher = cipher or FieldCipher(None)  # seals the holder's display name at rest
        self._redeem = redis.register_script(_REDEEM)

    async def create(self, tenant: str, cid: str, *, role: Role, ttl_s: int, lobby: bool,
                     created_by: str, history: History | None = None, audit: Audit | None = None) -> Invite:
        """`history`: the host's choice for a relative ("all" or "from_join"); see `history_for`.
        `audit`: who invites, recorded as `invite.created` in the same transaction."""
        seen = history_for(role, history)
        secret = secrets.token_urlsafe(24)
        expires_at = self._clock() + ttl_s
        key = Keys(tenant).invite(_digest(secret))
        async with self._r.pipeline(transaction=True) as p:
            p.hset(key, mapping={"consultation_id": cid, "role": role.value, "lobby": "1" if lobby else "0",
                                 "expires_at": str(expires_at), "used": "0", "created_by": created_by,
                                 "history": seen})
            p.expire(key, ttl_s + KEEP_AFTER_EXPIRY_S)
            if audit:
                entry = audit.entry(Action.INVITE_CREATED, self._clock(), consultation_id=cid,
                                    invitee_role=role.value)
                queue_append(p, tenant, cid, entry)
            await p.execute()
        return Invite(f"{PREFIX}.{tenant}.{secret}", tenant, cid, role, lobby, expires_at, seen)

    async def peek(self, token: str) -> Invite:
        """What an invite grants, without spending it."""
        parsed = parse_token(token)
        h = hash_fields(await self._r.hgetall(Keys(parsed[0]).invite(_digest(parsed[1])))) if parsed else {}
        if not h or not parsed:
            raise NotFound(_MESSAGES["invite_unknown"][1], code="invite_unknown")
        return Invite(token, parsed[0], h["consultation_id"], Role(h["role"]), h["lobby"] == "1",
                      float(h["expires_at"]), "from_join" if h.get("history") == "from_join" else "all",
                      h.get("used") == "1")

    async def redeem(self, token: str, *, subject: str, display_name: str,
                     audit_role: str | None = None) -> tuple[Invite, Participant]:
        """Spend the invite and add its holder to the consultation (lobby or admitted), atomically; with
        `audit_role` (the holder's role) recording `invite.redeemed` in the same script."""
        invite = await self.peek(token)
        k = Keys(invite.tenant)
        template = new_participant(subject, invite.role, display_name, self._clock(), ParticipantState.LOBBY)
        entry = Audit(subject, audit_role).entry(Action.INVITE_REDEEMED, template.joined_at,
                                                 consultation_id=invite.consultation_id,
                                                 participant_id=template.id) if audit_role else ""
        try:
            raw = await self._redeem(
                keys=[k.invite(_digest(token.split(".")[2])), k.consultation(invite.consultation_id),
                      k.participants(invite.consultation_id), k.subjects(invite.consultation_id),
                      k.my_consultations(subject), *audit_keys(invite.tenant, invite.consultation_id)],
                args=[self._clock(), self.cipher.participant_json(invite.tenant, template), entry])
        except aioredis.ResponseError as exc:
            for code, (kind, message) in _MESSAGES.items():
                if code in str(exc):
                    raise kind(message, code=code) from None
            raise
        return invite, self.cipher.participant(invite.tenant, raw)

