"""Booked consultations: a booking system reserves a slot with a host clinician for a citizen.

A booking is a consultation in state `scheduled` with both people admitted beforehand, plus a small
booking hash (who booked it, the host, the slot). Join links open the waiting room from
`OPENS_BEFORE_S` before the slot. A slot nobody attended (the consultation never became active) is
ended as `no-show` by the sweep `end_no_shows`, which any number of processes may run: removing the
slot from the due set is the first step of the script, so exactly one of them ends it.
Every change is one script (or MULTI) that also counts it in the statistics (rooms/stats.py).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import redis.asyncio as aioredis

from . import stats
from .consultations import ConsultationStore, new_consultation_fields, new_participant
from .errors import Conflict, NotFound
from .keys import Keys
from .models import Channel, Consultation, ConsultationState, Role
from .redis_types import as_hash, hash_fields, text_set, texts

OPENS_BEFORE_S = 15 * 60
KEEP_S = 90 * 86400  # booking bookkeeping (not the consultation) is kept this long after the slot

# Cancel or move a slot that has not started. KEYS: consultation, booking, due, stats prefix, old day set,
# new day set, booker's bookings. ARGV: mode (cancel|reschedule), now, Oslo day, booker, expected slot,
# new slot, new due time, the booking's new time to live
_CHANGE = stats.LUA + """
local state = redis.call('HGET', KEYS[1], 'state')
local booker = redis.call('HGET', KEYS[2], 'booker')
if not state or booker ~= ARGV[4] then return {err = 'booking_not_found'} end
if state ~= 'scheduled' and state ~= 'waiting' then return {err = 'booking_started'} end
if redis.call('HGET', KEYS[2], 'slot_at') ~= ARGV[5] then return {err = 'booking_changed'} end
local cid = redis.call('HGET', KEYS[1], 'id')
local counter = KEYS[4] .. redis.call('HGET', KEYS[1], 'service') .. ':' .. ARGV[3]
if ARGV[1] == 'cancel' then
  redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_at', ARGV[2])
  redis.call('HSET', KEYS[2], 'state', 'cancelled', 'updated_at', ARGV[2])
  redis.call('ZREM', KEYS[3], cid)
  redis.call('SREM', KEYS[5], cid)
  stats_count(counter, 'booking:cancelled')
else
  redis.call('HSET', KEYS[1], 'scheduled_at', ARGV[6])
  redis.call('HSET', KEYS[2], 'slot_at', ARGV[6], 'updated_at', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[7], cid)
  redis.call('SREM', KEYS[5], cid)
  redis.call('SADD', KEYS[6], cid)
  redis.call('EXPIRE', KEYS[6], """ + str(KEEP_S) + """)
  redis.call('ZADD', KEYS[7], ARGV[6], cid)
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  stats_count(counter, 'booking:rescheduled')
end
return 'ok'
"""

# End an unattended slot as no-show, once across all processes. KEYS: due, consultation, booking, stats prefix
# ARGV: consultation id, now, Oslo day
_NO_SHOW = stats.LUA + """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'scheduled' and state ~= 'waiting' then return 0 end
redis.call('HSET', KEYS[2], 'state', 'ended', 'ended_at', ARGV[2], 'outcome', 'no-show')
redis.call('HSET', KEYS[3], 'state', 'no-show', 'updated_at', ARGV[2])
stats_end(KEYS[4] .. redis.call('HGET', KEYS[2], 'service') .. ':' .. ARGV[3], 'no-show', nil)
return 1
"""

_ERRORS = {
    "booking_not_found": NotFound("Fant ikke denne timen.", code="booking_not_found"),
    "booking_started": Conflict("Timen er allerede i gang eller avsluttet.", code="booking_started"),
    "booking_changed": Conflict("Timen ble endret samtidig. Hent den på nytt.", code="booking_changed"),
}


def _raise(exc: aioredis.ResponseError) -> NoReturn:
    for key, err in _ERRORS.items():
        if key in str(exc):
            raise type(err)(err.message, code=err.code) from None
    raise exc


@dataclass(frozen=True, slots=True)
class Booking:
    consultation_id: str
    tenant: str
    service: str
    booker: str
    host: str
    citizen: str
    citizen_name: str
    slot_at: float
    state: str  # booked, cancelled, no-show (the consultation's own state says the rest)
    updated_at: float

    @classmethod
    def from_redis(cls, h: dict[str, str]) -> Booking:
        return cls(consultation_id=h["consultation_id"], tenant=h["tenant"], service=h["service"],
                   booker=h["booker"], host=h["host"], citizen=h["citizen"], citizen_name=h.get("citizen_name", ""),
                   slot_at=float(h["slot_at"]), state=h["state"], updated_at=float(h["updated_at"]))


class BookingStore:
    def __init__(self, redis: aioredis.Redis, consultations: ConsultationStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._consultations = consultations
        self._clock = clock
        self._change = redis.register_script(_CHANGE)
        self._no_show = redis.register_script(_NO_SHOW)

    async def create(self, tenant: str, service: str, *, booker: str, host: str, host_name: str, citizen: str,
                     citizen_name: str, slot_at: float, no_show_after_s: float,
                     channel: Channel = Channel.VIDEO) -> tuple[Booking, Consultation]:
        """The slot as a scheduled consultation with host and citizen admitted, in one MULTI."""
        k = Keys(tenant)
        now = self._clock()
        cid = "c_" + secrets.token_urlsafe(12)
        fields = new_consultation_fields(cid, tenant, service, creator=booker, now=now,
                                         state=ConsultationState.SCHEDULED, scheduled_at=slot_at, channel=channel)
        people = [new_participant(host, Role.CLINICIAN, host_name, now),
                  new_participant(citizen, Role.CITIZEN, citizen_name, now)]
        sealed_name = self._consultations.cipher.seal(tenant, "name", citizen_name) or ""  # sealed at rest
        booking = {"consultation_id": cid, "tenant": tenant, "service": service, "booker": booker, "host": host,
                   "citizen": citizen, "citizen_name": sealed_name,
                   "slot_at": str(slot_at), "state": "booked",
                   "created_at": str(now), "updated_at": str(now)}
        day_set = k.bookings_by_day(host, stats.oslo_day(slot_at))
        async with self._r.pipeline(transaction=True) as p:
            p.hset(k.consultation(cid), mapping=as_hash(fields))
            for person in people:
                self._consultations.queue_admitted(p, tenant, cid, person)
            p.hset(k.booking(cid), mapping=as_hash(booking))
            p.expire(k.booking(cid), int(max(0.0, slot_at - now) + KEEP_S))
            p.zadd(k.bookings_due(), {cid: slot_at + no_show_after_s})
            p.sadd(day_set, cid)
            p.expire(day_set, KEEP_S)
            p.zadd(k.bookings_of(booker), {cid: slot_at})
            p.hincrby(stats.stats_key(tenant, service, now), "booking:created", 1)
            p.expire(stats.stats_key(tenant, service, now), stats.STATS_TTL_S)
            await p.execute()
        return Booking.from_redis({**booking, "citizen_name": citizen_name}), await self._consultations.get(tenant, cid)

    async def get(self, tenant: str, cid: str) -> Booking:
        h = hash_fields(await self._r.hgetall(Keys(tenant).booking(cid)))
        if not h:
            raise NotFound("Fant ikke denne timen.", code="booking_not_found")
        return Booking.from_redis({**h, "citizen_name": self._consultations.cipher.open(tenant, "name",
                                                                                         h.get("citizen_name")) or ""})

    async def cancel(self, booking: Booking) -> None:
        await self._run_change(booking, "cancel", booking.slot_at, 0.0)

    async def reschedule(self, booking: Booking, slot_at: float, no_show_after_s: float) -> Booking:
        await self._run_change(booking, "reschedule", slot_at, slot_at + no_show_after_s)
        return await self.get(booking.tenant, booking.consultation_id)

    async def _run_change(self, b: Booking, mode: str, slot_at: float, due_at: float) -> None:
        k = Keys(b.tenant)
        now = self._clock()
        try:
            await self._change(
                keys=[k.consultation(b.consultation_id), k.booking(b.consultation_id), k.bookings_due(),
                      k.stats_prefix(), k.bookings_by_day(b.host, stats.oslo_day(b.slot_at)),
                      k.bookings_by_day(b.host, stats.oslo_day(slot_at)), k.bookings_of(b.booker)],
                args=[mode, now, stats.oslo_day(now), b.booker, str(b.slot_at), str(slot_at), due_at,
                      int(max(0.0, slot_at - now) + KEEP_S)])
        except aioredis.ResponseError as exc:
            _raise(exc)

    async def of_host(self, tenant: str, host: str, day: str) -> list[Consultation]:
        """The host's booked consultations on one Oslo day, by slot time (cancelled ones left out)."""
        out = []
        for cid in text_set(await self._r.smembers(Keys(tenant).bookings_by_day(host, day))):
            try:
                out.append(await self._consultations.get(tenant, cid))
            except NotFound:  # expired with retention
                continue
        return sorted(out, key=lambda c: c.scheduled_at or 0)

    async def of_booker(self, tenant: str, booker: str, slot_from: float) -> list[tuple[Booking, Consultation]]:
        """A booking system's bookings with a slot from `slot_from` on (for polling)."""
        out = []
        for cid in texts(await self._r.zrangebyscore(Keys(tenant).bookings_of(booker), slot_from, "+inf")):
            try:
                out.append((await self.get(tenant, cid), await self._consultations.get(tenant, cid)))
            except NotFound:
                continue
        return out

    async def end_no_shows(self, tenant: str) -> list[str]:
        """End every unattended slot whose time is up; returns the ids this caller ended."""
        k = Keys(tenant)
        now = self._clock()
        ended = []
        for cid in texts(await self._r.zrangebyscore(k.bookings_due(), "-inf", now)):
            if await self._no_show(keys=[k.bookings_due(), k.consultation(cid), k.booking(cid), k.stats_prefix()],
                                   args=[cid, now, stats.oslo_day(now)]):
                ended.append(cid)
        return ended


def changed_at(b: Booking, c: Consultation) -> float:
    """When a booking last changed: its own changes or the consultation's (started, ended)."""
    return max([b.updated_at, c.created_at, *(t for t in (c.started_at, c.ended_at) if t)])
