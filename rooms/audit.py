"""The audit trail: an append-only Redis Stream per tenant, sealed with a keyed HMAC chain.

Appending: a change to the store and the entry recording it are one Lua script (the script that takes a
ticket also XADDs `ticket.taken`), so a crash can never keep the one without the other. Scripts include
`LUA_AUDIT` and call `audit_append(stream, index, entry, extra...)`; Python passes `Audit.entry(...)`. Reads that
change nothing (`consultation.viewed`, `transcript.read`) go through `AuditLog.record`. Entries carry only ids,
roles and actions: never names, national ids, message text or health data.

Sealing (rooms/audit_seal.py): a sealer chains an HMAC (keyed by `NETTLEGE_AUDIT_KEY`, which is never in
Redis) over the stream in order and writes signed checkpoints outside Redis. Nothing kept in Redis is trusted
by `verify`: whoever can write Redis can neither rewrite, remove nor insert an entry unnoticed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from .keys import Keys
from .redis_types import stream_entries, text


class Action(StrEnum):
    TICKET_JOINED = "ticket.joined"
    TICKET_TAKEN = "ticket.taken"
    TICKET_LEFT = "ticket.left"
    TICKET_PRIORITY = "ticket.priority"
    TICKET_ABANDONED = "ticket.abandoned"
    TICKET_CHANNEL = "ticket.channel"
    TICKET_READ = "ticket.read"
    CONSULTATION_CREATED = "consultation.created"
    CONSULTATION_VIEWED = "consultation.viewed"
    CONSULTATION_JOINED = "consultation.joined"
    CONSULTATION_KNOCKED = "consultation.knocked"
    CONSULTATION_ADMITTED = "consultation.admitted"
    CONSULTATION_DENIED = "consultation.denied"
    CONSULTATION_ENDED = "consultation.ended"
    INVITE_CREATED = "invite.created"
    INVITE_REDEEMED = "invite.redeemed"
    TRANSCRIPT_READ = "transcript.read"
    TRANSCRIPT_EXPORTED = "transcript.exported"
    ATTACHMENT_READ = "attachment.read"
    CHAT_SHREDDED = "chat.shredded"
    DATA_EXPIRED = "data.expired"
    BOOKING_RESCHEDULED = "booking.rescheduled"
    BOOKING_CANCELLED = "booking.cancelled"
    SETTINGS_CHANGED = "settings.changed"


# A Lua function for scripts that record their own change. `entry` is `Audit.entry(...)` (a JSON array of field,
# value pairs) or '' for none; `extra` adds pairs known only inside the script (the ticket a take popped).
# `index` is the consultation's audit list, or the stream again when the entry names no consultation.
LUA_AUDIT = """
local function audit_append(stream, index, entry, ...)
  if entry == nil or entry == '' then return false end
  local fields = cjson.decode(entry)
  for _, v in ipairs({...}) do fields[#fields + 1] = v end
  local id = redis.call('XADD', stream, '*', unpack(fields))
  if index ~= stream then redis.call('RPUSH', index, id) end
  return id
end
"""

# KEYS: stream, consultation index (or the stream), data subject's index (or the stream)   ARGV: entry
_RECORD = LUA_AUDIT + """
local id = audit_append(KEYS[1], KEYS[2], ARGV[1])
if KEYS[3] ~= KEYS[1] then redis.call('RPUSH', KEYS[3], id) end
return id
"""


@dataclass(frozen=True, slots=True)
class Audit:
    """Who does a change, for the entry a store script appends with it."""

    actor: str
    role: str

    def entry(self, action: Action, now: float, *, consultation_id: str | None = None,
              ticket_id: str | None = None, **detail: str) -> str:
        fields = {"ts": f"{now:.3f}", "action": action.value, "actor": self.actor, "role": str(self.role),
                  **({"consultation_id": consultation_id} if consultation_id else {}),
                  **({"ticket_id": ticket_id} if ticket_id else {}), **detail}
        return json.dumps([x for kv in fields.items() for x in kv])


SYSTEM = Audit("system", "system")


def audit_keys(tenant: str, consultation_id: str | None) -> list[str]:
    """The two KEYS an appending script declares: the tenant's stream and the consultation's index."""
    k = Keys(tenant)
    return [k.audit(), k.consultation_audit(consultation_id) if consultation_id else k.audit()]


_APPEND = LUA_AUDIT + "return audit_append(KEYS[1], KEYS[2], ARGV[1])"


def queue_append(pipe: Any, tenant: str, consultation_id: str | None, entry: str) -> None:
    """Queue an entry's append in a MULTI pipeline, so it commits with the change queued beside it.
    EVAL with the source, not a registered script: Redis Cluster pipelines refuse EVALSHA."""
    keys = audit_keys(tenant, consultation_id)
    pipe.eval(_APPEND, len(keys), *keys, entry)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    fields: dict[str, str]

    @property
    def public(self) -> dict[str, str]:
        return dict(self.fields)


class AuditLog:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._clock = clock
        self._record = redis.register_script(_RECORD)

    async def record(self, tenant: str, action: Action, *, actor: str, role: str,
                     consultation_id: str | None = None, ticket_id: str | None = None,
                     data_subject: str | None = None, **detail: str) -> str:
        """Append one entry on its own (an access that changes nothing); returns its stream id.
        `data_subject`: whose personal data was accessed (a ticket's owner), for that citizen's access log."""
        entry = Audit(actor, role).entry(action, self._clock(), consultation_id=consultation_id,
                                         ticket_id=ticket_id, **detail)
        k = Keys(tenant)
        keys = [*audit_keys(tenant, consultation_id), k.subject_audit(data_subject) if data_subject else k.audit()]
        return text(await self._record(keys=keys, args=[entry]))

    async def record_access(self, tenant: str, action: Action, *, actor: str, role: str, consultation_id: str,
                            window_s: int = 900) -> str | None:
        """Record a read access once per actor, consultation and window: a page that refreshes its view
        every few seconds leaves one entry per quarter hour, not hundreds. Returns the entry id if recorded."""
        seen = Keys(tenant).audit_seen(action.value, actor, consultation_id)
        if not await self._r.set(seen, "1", nx=True, ex=window_s):
            return None
        return await self.record(tenant, action, actor=actor, role=role, consultation_id=consultation_id)

    async def record_reads(self, tenant: str, action: Action, *, actor: str, role: str,
                           tickets: list[tuple[str, str]], window_s: int, index_ttl_s: int) -> None:
        """Record `actor`'s read of these tickets' personal data ((ticket id, owner) pairs) once per window each,
        indexed under the owner (the index lives `index_ttl_s`, as long as a finished ticket)."""
        if not tickets:
            return
        k = Keys(tenant)
        async with self._r.pipeline(transaction=False) as p:
            for ticket_id, _ in tickets:
                p.set(k.audit_seen(action.value, actor, ticket_id), "1", nx=True, ex=window_s)
            fresh = await p.execute()
        for (ticket_id, owner), new in zip(tickets, fresh, strict=True):
            if new:  # the entry and its place in the owner's index are one script
                await self.record(tenant, action, actor=actor, role=role, ticket_id=ticket_id, data_subject=owner)
                await self._r.expire(k.subject_audit(owner), index_ttl_s)

    async def entries(self, tenant: str, start: str = "-", count: int | None = None) -> list[AuditEntry]:
        rows = stream_entries(await self._r.xrange(Keys(tenant).audit(), min=start, count=count))
        return [AuditEntry(i, f) for i, f in rows]

    async def for_consultation(self, tenant: str, cid: str) -> list[AuditEntry]:
        return await self._indexed(tenant, Keys(tenant).consultation_audit(cid))

    async def for_subject(self, tenant: str, subject: str) -> list[AuditEntry]:
        """Accesses to one citizen's personal data outside consultations (recorded with `data_subject`)."""
        return await self._indexed(tenant, Keys(tenant).subject_audit(subject))

    async def _indexed(self, tenant: str, index: str) -> list[AuditEntry]:
        k = Keys(tenant)
        ids = await self._r.lrange(index, 0, -1)
        async with self._r.pipeline(transaction=False) as p:
            for entry_id in ids:
                p.xrange(k.audit(), min=entry_id, max=entry_id)
            rows = await p.execute()
        return [AuditEntry(*r[0]) for r in rows if r]
