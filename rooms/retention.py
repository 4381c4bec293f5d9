"""Retention of personal data in Redis, enforced by a scheduled sweep (signaling/chat_wiring.py runs it with the
chat's crypto-shredding, every `SWEEP_INTERVAL_S`).

The policy, per key (README "Privacy" has the same table):
- a consultation (`consultation:{id}`, its participants with their sealed names, its subjects, its node) is
  deleted `retention_s` after it ended, or `retention_s` after it was created (or booked for) if it never ended;
  its id leaves every participant's `subject:{sub}:consultations` set at the same time, and `data.expired` is
  recorded in the audit trail in the same transaction;
- its chat (messages, attachments, data key) is crypto-shredded by the chat sweep on the same schedule;
- a finished ticket (`ticket:{id}`, sealed reason, phone and name) expires 7 days after it finished (set by the
  queue scripts; the sweep gives the same TTL to any finished ticket found without one);
- invites expire a day after their own expiry; rate, presence and "seen" keys carry short TTLs;
- the audit trail keeps ids, roles and actions only (no personal data) and is not deleted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from .audit import LUA_AUDIT, SYSTEM, Action, audit_keys
from .keys import Keys
from .queue import TERMINAL_TTL_S
from .redis_types import optional_texts, texts

# Delete one consultation and its indexes, and record it, at once. KEYS: consultation, participants, subjects,
# node, audit stream, consultation audit, then each subject's consultations set (in the order of ARGV[3..]).
# ARGV: consultation id, audit entry, the subjects read just before. A subject added meanwhile: 0 (next round).
_DELETE = LUA_AUDIT + """
local subjects = redis.call('HKEYS', KEYS[3])
if #subjects ~= #ARGV - 2 then return 0 end
local expected = {}
for i = 3, #ARGV do expected[ARGV[i]] = true end
for _, s in ipairs(subjects) do if not expected[s] then return 0 end end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
for i = 7, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
audit_append(KEYS[5], KEYS[6], ARGV[2])
return 1
"""


@dataclass
class RetentionReport:
    consultations: list[str] = field(default_factory=list)  # deleted
    tickets_given_ttl: int = 0


class RetentionSweeper:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._clock = clock
        self._delete_script = redis.register_script(_DELETE)

    async def sweep(self, tenant: str, retention_s: float, now: float | None = None) -> RetentionReport:
        """One round over a tenant; idempotent (safe on every node at once)."""
        now = self._clock() if now is None else now
        report = RetentionReport()
        k = Keys(tenant)
        consultation_prefix = k.consultation("")
        async for key in self._r.scan_iter(match=consultation_prefix + "*", count=500):
            cid = key[len(consultation_prefix):]
            if ":" in cid:  # consultation:{id}:participants and friends: handled with their consultation
                continue
            if await self._due(k, cid, retention_s, now) and await self._delete(tenant, cid, now):
                report.consultations.append(cid)
        ticket_prefix = k.ticket("")
        async for key in self._r.scan_iter(match=ticket_prefix + "*", count=500):
            state, ttl = await self._ticket_state(key)
            if state not in (None, "waiting") and ttl == -1:
                await self._r.expire(key, TERMINAL_TTL_S)
                report.tickets_given_ttl += 1
        return report

    async def _ticket_state(self, key: str) -> tuple[str | None, int]:
        async with self._r.pipeline(transaction=False) as p:
            p.hget(key, "state")
            p.ttl(key)
            state, ttl = await p.execute()
        return state, ttl

    async def _due(self, k: Keys, cid: str, retention_s: float, now: float) -> bool:
        state, ended_at, created_at, scheduled_at = optional_texts(await self._r.hmget(
            k.consultation(cid), "state", "ended_at", "created_at", "scheduled_at"))
        if state is None:
            return False
        if state == "ended":
            return bool(ended_at and float(ended_at) + retention_s <= now)
        started = max(float(created_at or 0), float(scheduled_at or 0))
        return started + retention_s <= now

    async def _delete(self, tenant: str, cid: str, now: float) -> bool:
        """Delete one consultation with its indexes, audited, in one script (every key declared: legal on a
        Redis Cluster too). False when a participant joined in between: the next round tries again."""
        k = Keys(tenant)
        subjects = sorted(texts(await self._r.hkeys(k.subjects(cid))))
        entry = SYSTEM.entry(Action.DATA_EXPIRED, now, consultation_id=cid)
        done = await self._delete_script(
            keys=[k.consultation(cid), k.participants(cid), k.subjects(cid), k.consultation_node(cid),
                  *audit_keys(tenant, cid), *[k.my_consultations(sub) for sub in subjects]],
            args=[cid, entry, *subjects])
        return bool(done)
