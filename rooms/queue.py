"""Waiting queues: one sorted set per service, ordered by (priority, enqueue time).

Every change is one Lua script, so a ticket can never be handed to two clinicians and no change is
ever half-done; the audit entry of a change (`audit=`) is appended by the same script, which also publishes
the change's events (rooms/events.py: QueueChanged, and TicketCalled + ConsultationChanged for a take).
The score is `rank * 1e14 + enqueued_ms`: lower is served first, and changing a
ticket's priority keeps its enqueue time.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from . import stats
from .audit import LUA_AUDIT, Action, Audit, audit_keys
from .consultations import LUA_PARTICIPANT, ConsultationStore, new_consultation_fields, new_participant
from .crypto import FieldCipher
from .errors import Conflict, NotFound, Unavailable
from .events import ConsultationChanged, QueueChanged, TicketCalled, channel_of, encode, ticket_topic
from .keys import Keys
from .models import (
    Channel,
    Consultation,
    ConsultationState,
    Participant,
    ParticipantState,
    Priority,
    Role,
    Ticket,
    TicketState,
)
from .nodes import ASSIGNMENT_TTL_S
from .ratelimit import LUA_RATE, RateSlot
from .redis_types import hash_fields, optional_texts, text_or_none, texts

RANK_SPAN = 10**14
OFFLINE_AFTER_S = 10.0  # take-next passes over a ticket whose owner has been offline longer (same priority)
TAKE_SCAN = 50  # tickets of the first priority take-next looks at for a present owner
TAKE_ATTEMPTS = 5  # take-next reads the head again when tickets joined it between its read and its script
TAKE_DECLARE_SPARE = 2  # a first call declares this many head tickets more than this process has takes in flight
TAKE_HEAD_MAX = 256  # at most this many head tickets are answered (and so declared by a next call)
TERMINAL_TTL_S = 7 * 24 * 3600  # a finished ticket is kept a week for statistics, then expires
CLINICIANS_WINDOW_S = 3600  # clinicians who took a ticket this recently count as working the queue (eta_s)


def score(priority: Priority, enqueued_at: float) -> int:
    return priority.rank * RANK_SPAN + int(enqueued_at * 1000)


# KEYS: open ticket, ticket, queue, stats, audit stream x2, queue owners, clinicians, rate limit counter (or the queue
# when none), the owner's open-ticket keys of other services...   ARGV: ticket id, score, Oslo hour (statistics),
# owner, clinicians seen since, queue event channel, queue event message, rate limit (-1: none), its window (s),
# ticket fields..., audit entry.
# Returns {1, 0-based rank, clinicians seen since}, {0, the ticket already waiting} or {-2} (rate limited);
# publishes QueueChanged.
_JOIN = stats.LUA + LUA_AUDIT + LUA_RATE + """
local open_key, ticket_key, queue_key, stats_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owners_key, clinicians_key = KEYS[7], KEYS[8]
if tonumber(ARGV[8]) >= 0 and rate_exceeded(KEYS[9], tonumber(ARGV[8]), tonumber(ARGV[9])) then return {-2} end
for i = 10, #KEYS do  -- one queue at a time: a waiting ticket in another service refuses this one too
  local elsewhere = redis.call('GET', KEYS[i])
  if elsewhere then return {0, elsewhere} end
end
local existing = redis.call('GET', open_key)
if existing then return {0, existing} end
redis.call('HSET', ticket_key, unpack(ARGV, 10, #ARGV - 1))
audit_append(KEYS[5], KEYS[6], ARGV[#ARGV])
redis.call('ZADD', queue_key, ARGV[2], ARGV[1])
redis.call('HSET', owners_key, ARGV[1], ARGV[4])
redis.call('SET', open_key, ARGV[1])
stats_join(stats_key, ARGV[3], redis.call('HGET', ticket_key, 'channel'), redis.call('HGET', ticket_key, 'owner_role'))
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {1, redis.call('ZRANK', queue_key, ARGV[1]), redis.call('ZCOUNT', clinicians_key, ARGV[5], '+inf')}
"""

# One round trip in the usual case. Every key the script touches is in KEYS (Redis Cluster routes a script by its
# keys; all share the tenant's slot), so the caller declares the keys of the queue's head as it last saw it (the
# previous take's answer; its first few tickets: as many as the script can reach); when the script would walk onto a
# ticket it did not declare (one queued meanwhile) it changes nothing and answers {-1, head}: declare those and run
# again.
# KEYS: queue, clinicians, stats, audit stream, consultation audit, consultation, its participants, its subjects,
# the clinician's consultations, disconnected set, taken counter, queue owners, rate limit counter (or the queue when
# none), the consultation's node assignment, then per declared head ticket: ticket, its owner's open-ticket key, its
# owner's consultations.
# ARGV: cid, now, clinician subject, ttl, rank span, offline threshold (s), how many tickets of the first priority
# to look at, queue channel, queue event, consultation channel, consultation event, the taken ticket's channel
# without its id, called event, the clinician participant's [id, role, sealed name] (JSON), citizen participant id,
# Oslo hour, audit entry, rate limit (-1: none), its window (s), the node to place the consultation on ('': none),
# how long, the consultation's fields (a JSON object), how many head tickets to answer, the prefix of a ticket's key
# (the declared tickets' ids are their keys without it).
# The limit is counted first (an empty queue counts too); the caller passes it on its first call only.
# Returns {0} (empty), {-2} (rate limited), {-1, head} (read again: at least the first TAKE_SCAN) or {1, the taken
# ticket's fields, how many head tickets the walk looked at, head} (the head after the take, for the next call): the
# fields a JSON object, the head a JSON [ids, owners] (a few bulk strings to read instead of a hundred).
# Publishes QueueChanged, ConsultationChanged, TicketCalled.
_TAKE = stats.LUA + LUA_AUDIT + LUA_PARTICIPANT + LUA_RATE + """
local queue_key, clinicians_key, stats_key = KEYS[1], KEYS[2], KEYS[3]
local ckey, participants_key, subjects_key, mine_key = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local disconnected_key, taken_seq_key, owners_key, node_key, FIXED = KEYS[10], KEYS[11], KEYS[12], KEYS[14], 14
local cid, now, who, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local span, offline_after, scan = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local answer_n, ticket_prefix = tonumber(ARGV[23]), ARGV[24]
local declared = {}  -- ticket id -> its place among the declared ones, read off its declared ticket key
for i = FIXED + 1, #KEYS, 3 do declared[string.sub(KEYS[i], #ticket_prefix + 1)] = (i - FIXED + 2) / 3 end
local function key_of(tid, which)
  return KEYS[FIXED + 3 * (declared[tid] - 1) + which]
end
local function head_now(n)
  local ids = redis.call('ZRANGE', queue_key, 0, n - 1)
  if #ids == 0 then return {}, {} end
  return ids, redis.call('HMGET', owners_key, unpack(ids))
end
-- Within the most urgent priority, the first ticket whose owner is here (or away only briefly); when
-- all of them are away, the first one all the same (the caller is told how long its owner has been gone).
if tonumber(ARGV[18]) >= 0 and rate_exceeded(KEYS[13], tonumber(ARGV[18]), tonumber(ARGV[19])) then return {-2} end
local head = redis.call('ZRANGE', queue_key, 0, scan - 1, 'WITHSCORES')
if #head == 0 then return {0} end
local rank = math.floor(tonumber(head[2]) / span)
local tid = head[1]
local walked = 0
for i = 1, #head, 2 do
  if math.floor(tonumber(head[i + 1]) / span) ~= rank then break end
  if not declared[head[i]] then
    local ids, owners = head_now(math.max(scan, answer_n))
    return {-1, cjson.encode({ids, owners})}
  end
  walked = walked + 1
  local d = redis.call('HGET', key_of(head[i], 1), 'disconnected_at')
  if not d or d == '' or now - tonumber(d) <= offline_after then tid = head[i]; break end
end
redis.call('ZREM', queue_key, tid)
redis.call('HDEL', owners_key, tid)
local tkey = key_of(tid, 1)
local t = redis.call('HGETALL', tkey)
local ticket = {}
for i = 1, #t, 2 do ticket[t[i]] = t[i + 1] end
local offline_s = ''
if ticket['disconnected_at'] and ticket['disconnected_at'] ~= '' then
  offline_s = tostring(now - tonumber(ticket['disconnected_at']))
end
local cfields = {}
for f, v in pairs(cjson.decode(ARGV[22])) do cfields[#cfields + 1] = f; cfields[#cfields + 1] = v end
redis.call('HSET', ckey, unpack(cfields))
if ARGV[20] ~= '' then redis.call('SET', node_key, ARGV[20], 'EX', ARGV[21]) end
redis.call('HSET', ckey, 'ticket_id', tid, 'channel', ticket['channel'], 'service', ticket['service'])
local c = cjson.decode(ARGV[14])
local clinician = {id = c[1], subject = who, role = c[2], display_name = c[3], state = 'admitted', joined_at = now}
local citizen = {id = ARGV[15], subject = ticket['owner'], role = ticket['owner_role'],
                 display_name = ticket['owner_name'], state = 'admitted', joined_at = now}
add_participant(participants_key, subjects_key, mine_key, cid, clinician)
add_participant(participants_key, subjects_key, key_of(tid, 3), cid, citizen)
stats_take(stats_key, ARGV[16], now - tonumber(ticket['enqueued_at']), ticket['owner_role'])
redis.call('HSET', tkey, 'state', 'taken', 'consultation_id', cid, 'taken_by', who, 'disconnected_at', '',
           'taken_seq', redis.call('INCR', taken_seq_key), 'owner_offline_s', offline_s)
redis.call('EXPIRE', tkey, ttl)
redis.call('DEL', key_of(tid, 2))
redis.call('ZREM', disconnected_key, tid)
redis.call('ZADD', clinicians_key, now, who)
audit_append(KEYS[4], KEYS[5], ARGV[17], 'ticket_id', tid)
redis.call('PUBLISH', ARGV[8], ARGV[9])
redis.call('PUBLISH', ARGV[10], ARGV[11])
redis.call('PUBLISH', ARGV[12] .. tid, ARGV[13])
local ids, owners = head_now(answer_n)
local after = redis.call('HGETALL', tkey)
local taken = {}
for i = 1, #after, 2 do taken[after[i]] = after[i + 1] end
return {1, cjson.encode(taken), walked, cjson.encode({ids, owners})}
"""

# KEYS: ticket, queue, audit stream x2   ARGV: priority, score, ticket id, audit entry, queue event channel, message
_SET_PRIORITY = LUA_AUDIT + """
local tkey, queue_key = KEYS[1], KEYS[2]
if redis.call('HGET', tkey, 'state') ~= 'waiting' then return 0 end
redis.call('ZADD', queue_key, 'XX', ARGV[2], ARGV[3])
redis.call('HSET', tkey, 'priority', ARGV[1])
audit_append(KEYS[3], KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""

# Leave or abandon: only a waiting ticket; ARGV[1] = new state, ARGV[2] = required disconnect cutoff or '',
# ARGV[3] = ttl, ARGV[4] = audit entry, ARGV[5], ARGV[6] = the queue event's channel and message.
# KEYS 6, 7: audit stream x2, 8: queue owners
_REMOVE = stats.LUA + LUA_AUDIT + """
local tkey, queue_key, open_key, disc_key, stats_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('HGET', tkey, 'state') ~= 'waiting' then return 0 end
if ARGV[2] ~= '' then
  local d = redis.call('HGET', tkey, 'disconnected_at')
  if not d or d == '' or tonumber(d) > tonumber(ARGV[2]) then return 0 end
end
local tid = redis.call('HGET', tkey, 'id')
redis.call('ZREM', queue_key, tid)
redis.call('HDEL', KEYS[8], tid)
redis.call('ZREM', disc_key, tid)
redis.call('DEL', open_key)
redis.call('HSET', tkey, 'state', ARGV[1])
redis.call('EXPIRE', tkey, tonumber(ARGV[3]))
stats_count(stats_key, ARGV[1])
audit_append(KEYS[6], KEYS[7], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""

_PRESENCE = """
local tkey, disc_key = KEYS[1], KEYS[2]
if redis.call('HGET', tkey, 'state') ~= 'waiting' then return 0 end
local tid = redis.call('HGET', tkey, 'id')
if ARGV[1] == '' then
  redis.call('HSET', tkey, 'disconnected_at', '')
  redis.call('ZREM', disc_key, tid)
else
  local d = redis.call('HGET', tkey, 'disconnected_at')
  if d and d ~= '' then return 1 end
  redis.call('HSET', tkey, 'disconnected_at', ARGV[1])
  redis.call('ZADD', disc_key, ARGV[1], tid)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Place:
    position: int  # 1-based
    eta_s: int


def _rate_args(rate: RateSlot | None) -> tuple[int, int]:
    return (rate.limit, rate.window_s) if rate else (-1, 0)


def _place(rank: int, clinicians: int, median_consultation_s: int) -> Place:
    # Each clinician seen taking a ticket in the last hour works the queue in parallel.
    return Place(position=rank + 1, eta_s=math.ceil(rank * median_consultation_s / max(1, clinicians)))


class QueueStore:
    def __init__(self, redis: aioredis.Redis, consultations: ConsultationStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._consultations = consultations
        self._clock = clock
        # Reason, callback phone and owner name are sealed at rest with the consultations' cipher.
        self.cipher: FieldCipher = consultations.cipher
        self._join = redis.register_script(_JOIN)
        self._take = redis.register_script(_TAKE)
        self._set_priority = redis.register_script(_SET_PRIORITY)
        self._remove = redis.register_script(_REMOVE)
        self._presence = redis.register_script(_PRESENCE)
        # (tenant, service) -> the queue's head as the last take-next saw it: (ticket id, owner) in order
        self._heads: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._taking: dict[tuple[str, str], int] = {}  # take-next calls of this process in flight, per queue
        # how many head tickets the last take's walk looked at (owners gone make it longer), plus the spare
        self._reach: dict[tuple[str, str], int] = {}

    async def join(self, tenant: str, service: str, *, owner: str, owner_role: Role, owner_name: str,
                   channel: Channel, reason: str, callback_phone: str | None = None,
                   priority: Priority = Priority.GREEN, audit: Audit | None = None,
                   exclusive_of: Sequence[str] = ()) -> Ticket:
        """Queue a ticket (see `enqueue`)."""
        ticket, _ = await self.enqueue(tenant, service, owner=owner, owner_role=owner_role, owner_name=owner_name,
                                       channel=channel, reason=reason, callback_phone=callback_phone,
                                       priority=priority, audit=audit, exclusive_of=exclusive_of)
        return ticket

    async def enqueue(self, tenant: str, service: str, *, owner: str, owner_role: Role, owner_name: str,
                      channel: Channel, reason: str, callback_phone: str | None = None,
                      priority: Priority = Priority.GREEN, audit: Audit | None = None,
                      exclusive_of: Sequence[str] = (), median_consultation_s: int = 600,
                      rate: RateSlot | None = None) -> tuple[Ticket, Place]:
        """Queue a ticket and tell its place, in one script (which also publishes QueueChanged). An owner holds at
        most one waiting ticket per service (Conflict otherwise), and none at all while it waits in one of the
        services in `exclusive_of` (a citizen: one queue at a time).
        `audit`: who queues it, recorded as `ticket.joined` in the same script; `rate`: the caller's limit, counted
        by the script first (RateLimited)."""
        k = Keys(tenant)
        now = self._clock()
        # Ids sort by enqueue time, so equal scores (same millisecond) still keep arrival order.
        ticket = Ticket(id=f"t_{int(now * 1e6):x}{secrets.token_hex(6)}", tenant=tenant, service=service, owner=owner,
                        owner_role=owner_role, owner_name=owner_name, channel=channel, reason=reason,
                        priority=priority, enqueued_at=now, state=TicketState.WAITING,
                        callback_phone=callback_phone)
        fields = [x for kv in self.cipher.sealed_ticket(ticket).to_redis().items() for x in kv]
        changed = channel_of(tenant, QueueChanged(service))
        answer = await self._join(
            keys=[k.open_ticket(owner, service), k.ticket(ticket.id), k.queue(service),
                  stats.stats_key(tenant, service, now), *audit_keys(tenant, None), k.queue_owners(service),
                  k.clinicians(service), rate.key if rate else k.queue(service),
                  *(k.open_ticket(owner, s) for s in exclusive_of if s != service)],
            args=[ticket.id, score(priority, now), stats.oslo_hour(now), owner, now - CLINICIANS_WINDOW_S,
                  *changed, *_rate_args(rate), *fields,
                  audit.entry(Action.TICKET_JOINED, now, ticket_id=ticket.id, service=service) if audit else ""])
        if answer[0] == -2 and rate:
            raise rate.refused()
        if not answer[0]:
            raise Conflict("Du står allerede i køen til denne tjenesten.", code="already_queued")
        return ticket, _place(int(answer[1]), int(answer[2]), median_consultation_s)

    async def get(self, tenant: str, ticket_id: str) -> Ticket:
        h = hash_fields(await self._r.hgetall(Keys(tenant).ticket(ticket_id)))
        if not h:
            raise NotFound("Fant ikke denne plassen i køen.", code="ticket_not_found")
        return self.cipher.opened_ticket(Ticket.from_redis(h))

    async def open_ticket_of(self, tenant: str, owner: str, service: str) -> str | None:
        return text_or_none(await self._r.get(Keys(tenant).open_ticket(owner, service)))

    async def place(self, ticket: Ticket, median_consultation_s: int) -> Place | None:
        """Position (1-based) and estimated wait, or None when the ticket no longer waits."""
        k = Keys(ticket.tenant)
        now = self._clock()
        async with self._r.pipeline(transaction=False) as p:
            p.zrank(k.queue(ticket.service), ticket.id)
            p.zcount(k.clinicians(ticket.service), now - CLINICIANS_WINDOW_S, "+inf")
            rank, clinicians = await p.execute()
        return None if rank is None else _place(rank, clinicians, median_consultation_s)

    async def length(self, tenant: str, service: str) -> int:
        return await self._r.zcard(Keys(tenant).queue(service))

    async def waiting(self, tenant: str, service: str, limit: int = 200) -> list[Ticket]:
        ids = texts(await self._r.zrange(Keys(tenant).queue(service), 0, limit - 1))
        if not ids:
            return []
        async with self._r.pipeline(transaction=False) as p:
            for tid in ids:
                p.hgetall(Keys(tenant).ticket(tid))
            rows = await p.execute()
        return [self.cipher.opened_ticket(Ticket.from_redis(h)) for h in rows if h]

    async def take_next(self, tenant: str, service: str, *, clinician: str, clinician_role: Role,
                        clinician_name: str, audit: Audit | None = None, rate: RateSlot | None = None,
                        place_on: str | None = None) -> tuple[Ticket, Consultation] | None:
        """Atomically take the most urgent, oldest ticket whose owner is present (within that priority; gone
        for at most OFFLINE_AFTER_S; if all are gone, the oldest anyway, with `owner_offline_s` set) and open
        a consultation with its owner invited. The script also publishes QueueChanged, TicketCalled and
        ConsultationChanged. One round trip while the head this process saw last is still the head.
        `audit`: who takes it, recorded as `ticket.taken` in the same script; `rate`: the caller's limit, counted
        by the script first, once (RateLimited); `place_on`: the node to hold its media (rooms/nodes.py), recorded
        by the script."""
        k = Keys(tenant)
        now = self._clock()
        cid = "c_" + secrets.token_urlsafe(12)
        fields = new_consultation_fields(cid, tenant, service, creator=clinician, now=now,
                                         state=ConsultationState.WAITING)
        me = new_participant(clinician, clinician_role, clinician_name, now)
        citizen_pid = "p_" + secrets.token_urlsafe(9)
        fields_json = json.dumps(fields)
        # the script builds the clinician's participant like the citizen's (no dataclass-to-JSON here)
        clinician_json = json.dumps([me.id, me.role.value, self.cipher.seal(tenant, "name", me.display_name) or ""])
        called_prefix = k.events(ticket_topic(""))
        _, called = encode(TicketCalled("", cid))  # the topic names the ticket; the message only the consultation
        fixed_keys = [k.queue(service), k.clinicians(service), stats.stats_key(tenant, service, now),
                      *audit_keys(tenant, cid), k.consultation(cid), k.participants(cid), k.subjects(cid),
                      k.my_consultations(clinician), k.disconnected(), k.queue_taken_seq(service),
                      k.queue_owners(service), rate.key if rate else k.queue(service), k.consultation_node(cid)]
        fixed_args: list[str | int | float] = [
                      cid, now, clinician, TERMINAL_TTL_S, RANK_SPAN, OFFLINE_AFTER_S, TAKE_SCAN,
                      *channel_of(tenant, QueueChanged(service)), *channel_of(tenant, ConsultationChanged(cid)),
                      called_prefix, called, clinician_json, citizen_pid,
                      stats.oslo_hour(now), audit.entry(Action.TICKET_TAKEN, now, consultation_id=cid) if audit else ""]
        rate_args = _rate_args(rate)
        ticket_prefix = k.ticket("")
        queue = (tenant, service)
        # A first call declares only the head tickets its script can reach: one per take of this process that runs
        # before it (each takes one off the head) and as many as the last take's walk looked at (owners gone) plus a
        # spare few. The script answers the head that far and a few more (a longer answer cost more to read than the
        # retries it saved, with 100 clinicians taking at once against `nettlege serve`). A stale head (-1) declares
        # all the script answered, at least the TAKE_SCAN tickets a walk may look at. The takes in flight are counted
        # again for each call (a burst's first take starts alone but its retry runs among the whole burst).
        self._taking[queue] = self._taking.get(queue, 0) + 1
        try:
            for attempt in range(TAKE_ATTEMPTS):
                want = self._taking[queue] + self._reach.get(queue, TAKE_DECLARE_SPARE)
                answer_n = min(TAKE_HEAD_MAX, want + 8)
                head = self._heads.get(queue, [])[:want if attempt == 0 else TAKE_HEAD_MAX]
                per_ticket = [key for tid, owner in head
                              for key in (k.ticket(tid), k.open_ticket(owner, service), k.my_consultations(owner))]
                answer = await self._take(keys=[*fixed_keys, *per_ticket],
                                          args=[*fixed_args, *rate_args, place_on or "", ASSIGNMENT_TTL_S,
                                                fields_json, answer_n, ticket_prefix])
                rate_args = _rate_args(None)  # counted once
                if answer[0] == -2 and rate:
                    raise rate.refused()
                if answer[0] == 0:
                    return None
                # The head as the script left it: the keys the next call declares.
                await self._remember_head(tenant, service, answer[-1])
                if answer[0] == 1:
                    self._reach[queue] = int(answer[2]) + TAKE_DECLARE_SPARE
                    break
            else:
                raise Unavailable("Køen endres akkurat nå. Prøv igjen.", retry_after_s=1, code="queue_busy")
        finally:
            self._taking[queue] -= 1
        ticket = self.cipher.opened_ticket(Ticket.from_redis(json.loads(answer[1])))
        citizen = Participant(id=citizen_pid, subject=ticket.owner, role=Role(ticket.owner_role),
                              display_name=ticket.owner_name, state=ParticipantState.ADMITTED, joined_at=now)
        consultation = Consultation.from_redis(
            {**fields, "ticket_id": ticket.id, "channel": ticket.channel.value, "service": ticket.service},
            [me, citizen])
        return ticket, consultation

    async def _remember_head(self, tenant: str, service: str, raw: Any) -> None:
        decoded = json.loads(raw)  # [ids, owners]; Lua's cjson writes an empty list as {} and a missing owner false
        ids, owners = (decoded[0] or [], decoded[1] or []) if isinstance(decoded, list) and decoded else ([], [])
        head: list[tuple[str, str | None]] = [(str(tid), owner if isinstance(owner, str) else None)
                                              for tid, owner in zip(ids, owners, strict=True)]
        missing = [tid for tid, owner in head if owner is None]
        if missing:  # queued by a version without the owners hash: read those tickets' owners
            k = Keys(tenant)
            async with self._r.pipeline(transaction=False) as p:
                for tid in missing:
                    p.hget(k.ticket(tid), "owner")
                found = dict(zip(missing, optional_texts(await p.execute()), strict=True))
            head = [(tid, owner if owner is not None else found.get(tid)) for tid, owner in head]
        self._heads[(tenant, service)] = [(tid, owner or "") for tid, owner in head]

    async def set_priority(self, ticket: Ticket, priority: Priority, audit: Audit | None = None) -> Ticket:
        k = Keys(ticket.tenant)
        entry = audit.entry(Action.TICKET_PRIORITY, self._clock(), ticket_id=ticket.id,
                            priority=priority.value) if audit else ""
        ok = await self._set_priority(keys=[k.ticket(ticket.id), k.queue(ticket.service),
                                            *audit_keys(ticket.tenant, None)],
                                      args=[priority.value, score(priority, ticket.enqueued_at), ticket.id, entry,
                                            *channel_of(ticket.tenant, QueueChanged(ticket.service))])
        if not ok:
            raise Conflict("Denne plassen i køen venter ikke lenger.", code="ticket_not_waiting")
        return await self.get(ticket.tenant, ticket.id)

    async def leave(self, ticket: Ticket, audit: Audit | None = None) -> None:
        if not await self._remove_ticket(ticket, TicketState.LEFT, cutoff=None, audit=audit):
            raise Conflict("Denne plassen i køen venter ikke lenger.", code="ticket_not_waiting")

    async def _remove_ticket(self, ticket: Ticket, state: TicketState, cutoff: float | None,
                             audit: Audit | None) -> bool:
        k = Keys(ticket.tenant)
        action = Action.TICKET_LEFT if state == TicketState.LEFT else Action.TICKET_ABANDONED
        entry = audit.entry(action, self._clock(), ticket_id=ticket.id) if audit else ""
        return bool(await self._remove(
            keys=[k.ticket(ticket.id), k.queue(ticket.service), k.open_ticket(ticket.owner, ticket.service),
                  k.disconnected(), stats.stats_key(ticket.tenant, ticket.service, self._clock()),
                  *audit_keys(ticket.tenant, None), k.queue_owners(ticket.service)],
            args=[state.value, "" if cutoff is None else cutoff, TERMINAL_TTL_S, entry,
                  *channel_of(ticket.tenant, QueueChanged(ticket.service))]))

    async def disconnected(self, tenant: str, ticket_id: str) -> None:
        """The owner's live connection dropped: the ticket keeps its place for the grace period."""
        k = Keys(tenant)
        await self._presence(keys=[k.ticket(ticket_id), k.disconnected()], args=[self._clock()])

    async def reconnected(self, tenant: str, ticket_id: str) -> None:
        k = Keys(tenant)
        await self._presence(keys=[k.ticket(ticket_id), k.disconnected()], args=[""])

    async def abandon_expired(self, tenant: str, grace_s: float, audit: Audit | None = None) -> list[Ticket]:
        """Drop tickets whose owner has been gone longer than the grace period; counted as abandoned (and
        recorded as `ticket.abandoned` by `audit`, usually the system, in the same script)."""
        cutoff = self._clock() - grace_s
        ids = texts(await self._r.zrangebyscore(Keys(tenant).disconnected(), "-inf", cutoff))
        dropped = []
        for tid in ids:
            try:
                ticket = await self.get(tenant, tid)
            except NotFound:
                await self._r.zrem(Keys(tenant).disconnected(), tid)
                continue
            if await self._remove_ticket(ticket, TicketState.ABANDONED, cutoff=cutoff, audit=audit):
                dropped.append(ticket)
        return dropped


# KEYS: ticket, audit stream x2   ARGV: channel, sealed callback phone ('' keeps the stored one), audit entry
_SWITCH_CHANNEL = LUA_AUDIT + """
local tkey = KEYS[1]
if redis.call('HGET', tkey, 'state') ~= 'waiting' then return 0 end
redis.call('HSET', tkey, 'channel', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', tkey, 'callback_phone', ARGV[2]) end
audit_append(KEYS[2], KEYS[3], ARGV[3])
return 1
"""


async def switch_channel(queue: QueueStore, ticket: Ticket, channel: Channel, callback_phone: str | None,
                         audit: Audit | None = None) -> Ticket:
    """A waiting ticket continues on another channel (e.g. "call me instead"): it keeps its place (the score
    is priority and enqueue time only); a new callback phone is sealed like the one given at join. The change
    and its `ticket.channel` audit entry are one script; Conflict when the ticket no longer waits."""
    k = Keys(ticket.tenant)
    entry = audit.entry(Action.TICKET_CHANNEL, queue._clock(), ticket_id=ticket.id,
                        channel=channel.value) if audit else ""
    sealed = queue.cipher.seal(ticket.tenant, "phone", callback_phone) or ""
    ok = await queue._r.register_script(_SWITCH_CHANNEL)(
        keys=[k.ticket(ticket.id), *audit_keys(ticket.tenant, None)], args=[channel.value, sealed, entry])
    if not ok:
        raise Conflict("Denne plassen i køen venter ikke lenger.", code="ticket_not_waiting")
    return await queue.get(ticket.tenant, ticket.id)
