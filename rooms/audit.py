"""The audit trail: an append-only, hash-chained Redis Stream per tenant.

Each entry holds the previous entry's hash and its own: sha256(prev_hash + canonical JSON of its fields).
Appending is compare-and-set on the chain head inside a script, so concurrent writers on several
processes still form one chain. Entries carry only ids, roles and actions: never names, national ids,
message text or health data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from .keys import Keys


class Action(StrEnum):
    TICKET_JOINED = "ticket.joined"
    TICKET_TAKEN = "ticket.taken"
    TICKET_LEFT = "ticket.left"
    TICKET_PRIORITY = "ticket.priority"
    TICKET_ABANDONED = "ticket.abandoned"
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
    BOOKING_RESCHEDULED = "booking.rescheduled"
    BOOKING_CANCELLED = "booking.cancelled"
    SETTINGS_CHANGED = "settings.changed"


GENESIS = "0" * 64

# KEYS: stream, head, consultation index (or the stream again)   ARGV: expected prev, new hash, index?, fields...
_APPEND = """
local head = redis.call('GET', KEYS[2]) or '""" + GENESIS + """'
if head ~= ARGV[1] then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[3], id) end
return id
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    fields: dict[str, str]

    @property
    def public(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if k not in ("prev", "hash")}


def _hash(prev: str, fields: dict[str, str]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


class AuditLog:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._clock = clock
        self._append = redis.register_script(_APPEND)
        # Appends from this process go one at a time per tenant, remembering the head they wrote:
        # no lost races among ourselves and no extra GET; other processes are caught by the CAS.
        self._locks: dict[str, asyncio.Lock] = {}
        self._heads: dict[str, str] = {}

    async def record(self, tenant: str, action: Action, *, actor: str, role: str,
                     consultation_id: str | None = None, ticket_id: str | None = None,
                     **detail: str) -> str:
        """Append one entry; returns its stream id. Retries when another writer moved the head."""
        k = Keys(tenant)
        fields = {"ts": f"{self._clock():.3f}", "action": action.value, "actor": actor, "role": role,
                  **({"consultation_id": consultation_id} if consultation_id else {}),
                  **({"ticket_id": ticket_id} if ticket_id else {}), **detail}
        index_key = k.consultation_audit(consultation_id) if consultation_id else k.audit()
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            for _ in range(1000):
                prev = self._heads.get(tenant) or await self._r.get(k.audit_head()) or GENESIS
                digest = _hash(prev, fields)
                chained = {**fields, "prev": prev, "hash": digest}
                entry_id = await self._append(
                    keys=[k.audit(), k.audit_head(), index_key],
                    args=[prev, digest, "1" if consultation_id else "0",
                          *[x for kv in chained.items() for x in kv]])
                if entry_id:
                    self._heads[tenant] = digest
                    return entry_id
                self._heads.pop(tenant, None)  # another process moved the head: read it again
        raise RuntimeError("audit chain head kept moving")  # pragma: no cover - 1000 lost races

    async def record_access(self, tenant: str, action: Action, *, actor: str, role: str, consultation_id: str,
                            window_s: int = 900) -> str | None:
        """Record a read access once per actor, consultation and window: a page that refreshes its view
        every few seconds leaves one entry per quarter hour, not hundreds. Returns the entry id if recorded."""
        seen = Keys(tenant).audit_seen(action.value, actor, consultation_id)
        if not await self._r.set(seen, "1", nx=True, ex=window_s):
            return None
        return await self.record(tenant, action, actor=actor, role=role, consultation_id=consultation_id)

    async def entries(self, tenant: str, start: str = "-", count: int | None = None) -> list[AuditEntry]:
        rows = await self._r.xrange(Keys(tenant).audit(), min=start, count=count)
        return [AuditEntry(i, f) for i, f in rows]

    async def for_consultation(self, tenant: str, cid: str) -> list[AuditEntry]:
        k = Keys(tenant)
        ids = await self._r.lrange(k.consultation_audit(cid), 0, -1)
        async with self._r.pipeline(transaction=False) as p:
            for entry_id in ids:
                p.xrange(k.audit(), min=entry_id, max=entry_id)
            rows = await p.execute()
        return [AuditEntry(*r[0]) for r in rows if r]

    async def verify(self, tenant: str) -> list[str]:
        """Walk the chain; return the ids of entries that do not match (empty when intact)."""
        bad: list[str] = []
        prev = GENESIS
        last_id = "-"
        while True:
            batch = await self._r.xrange(Keys(tenant).audit(), min=last_id, count=1000)
            batch = [row for row in batch if row[0] != last_id]
            if not batch:
                break
            for entry_id, f in batch:
                body = {k: v for k, v in f.items() if k not in ("prev", "hash")}
                if f.get("prev") != prev or f.get("hash") != _hash(prev, body):
                    bad.append(entry_id)
                prev = f.get("hash", "")
            last_id = batch[-1][0]
        head = await self._r.get(Keys(tenant).audit_head()) or GENESIS
        if head != prev:
            bad.append("head")
        return bad
