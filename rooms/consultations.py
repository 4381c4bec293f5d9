"""Consultations (rooms), their participants and the lobby.

State: scheduled -> waiting -> active -> ended. People not pre-authorised knock and wait in the lobby
until a clinician admits or denies them. Each change can record its audit entry in the same script (`audit=`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn

import redis.asyncio as aioredis

from . import stats
from .audit import LUA_AUDIT, Action, Audit, audit_keys, queue_append
from .crypto import FieldCipher
from .errors import Conflict, NotFound
from .keys import Keys
from .models import (
    Channel,
    Consultation,
    ConsultationState,
    Outcome,
    Participant,
    ParticipantState,
    Role,
)
from .redis_types import as_hash, optional_texts, text, text_set


def new_consultation_fields(cid: str, tenant: str, service: str, *, creator: str, now: float,
                            state: ConsultationState, scheduled_at: float | None = None,
                            channel: Channel = Channel.VIDEO) -> dict[str, str]:
    return {"id": cid, "tenant": tenant, "service": service, "state": state.value, "created_at": str(now),
            "created_by": creator, "scheduled_at": "" if scheduled_at is None else str(scheduled_at),
            "channel": channel.value}


def new_participant(subject: str, role: Role, display_name: str, now: float,
                    state: ParticipantState = ParticipantState.ADMITTED) -> Participant:
    return Participant(id="p_" + secrets.token_urlsafe(9), subject=subject, role=role,
                       display_name=display_name, state=state, joined_at=now)


# "Add a participant", for every script that adds one (prepend it, like LUA_AUDIT): its json under its id, the
# subject's index, and (once admitted) the consultation in the subject's "mine". `raw`: the json as sent, if any.
LUA_PARTICIPANT = """
local function add_participant(participants_key, subjects_key, mine_key, cid, p, raw)
  raw = raw or cjson.encode(p)
  redis.call('HSET', participants_key, p['id'], raw)
  redis.call('HSET', subjects_key, p['subject'], p['id'])
  if p['state'] == 'admitted' then redis.call('SADD', mine_key, cid) end
  return raw
end
"""

# "Is this consultation still open", for another module's script that must refuse a change to a consultation that
# is gone or ended atomically with it (chat's append): prepend it and pass `ConsultationStore.state_key` as a key.
# Returns nil, or the error code to return as `{err = ...}`. The consultation's layout stays known to rooms/ only.
LUA_CONSULTATION_OPEN = """
local function consultation_closed(consultation_key)
  local state = redis.call('HGET', consultation_key, 'state')
  if not state then return 'consultation_not_found' end
  if state == 'ended' then return 'consultation_ended' end
  return nil
end
"""

# Add a participant unless the subject is one already. KEYS: consultation, participants, subjects, mine,
# audit stream, consultation audit   ARGV: participant id, subject, participant json, audit entry.
# Returns the participant json that holds. Only an admitted participant gets the consultation in "mine" (a knock
# does not: the lobby sees nothing of the consultation).
_ADD_PARTICIPANT = LUA_AUDIT + LUA_PARTICIPANT + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {err = 'not_found'} end
if state == 'ended' then return {err = 'ended'} end
local existing = redis.call('HGET', KEYS[3], ARGV[2])
if existing then return redis.call('HGET', KEYS[2], existing) end
add_participant(KEYS[2], KEYS[3], KEYS[4], redis.call('HGET', KEYS[1], 'id'), cjson.decode(ARGV[3]), ARGV[3])
audit_append(KEYS[5], KEYS[6], ARGV[4])
return ARGV[3]
"""

# Lobby decision. KEYS: consultation, participants, audit stream, consultation audit, the participant's "mine"
# ARGV: participant id, new state, audit entry
_DECIDE = LUA_AUDIT + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {err = 'not_found'} end
if state == 'ended' then return {err = 'ended'} end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {err = 'participant_not_found'} end
local p = cjson.decode(raw)
if p['state'] ~= 'lobby' then return {err = 'not_in_lobby'} end
p['state'] = ARGV[2]
raw = cjson.encode(p)
redis.call('HSET', KEYS[2], ARGV[1], raw)
if ARGV[2] == 'admitted' then redis.call('SADD', KEYS[5], redis.call('HGET', KEYS[1], 'id')) end
audit_append(KEYS[3], KEYS[4], ARGV[3])
return raw
"""

# KEYS: consultation, the Oslo day's stats prefix, audit stream, consultation audit. ARGV: from-states csv,
# to-state, timestamp field, now, outcome or '', Oslo day, audit entry or ''. Ending counts the outcome (and the
# duration since start) in the service's stats hash.
_TRANSITION = stats.LUA + LUA_AUDIT + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {err = 'not_found'} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == state then allowed = true end end
if not allowed then return state end
redis.call('HSET', KEYS[1], 'state', ARGV[2], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'outcome', ARGV[5]) end
if ARGV[2] == 'ended' then
  local started = redis.call('HGET', KEYS[1], 'started_at')
  local duration = nil
  if started and started ~= '' then duration = tonumber(ARGV[4]) - tonumber(started) end
  stats_end(KEYS[2] .. redis.call('HGET', KEYS[1], 'service') .. ':' .. ARGV[6], ARGV[5], duration)
end
audit_append(KEYS[3], KEYS[4], ARGV[7])
return 'ok'
"""

_ERRORS = {
    "not_found": NotFound("Fant ikke denne konsultasjonen.", code="consultation_not_found"),
    "ended": Conflict("Konsultasjonen er avsluttet.", code="consultation_ended"),
    "participant_not_found": NotFound("Fant ikke denne deltakeren.", code="participant_not_found"),
    "not_in_lobby": Conflict("Deltakeren venter ikke på å slippe inn.", code="not_in_lobby"),
}


def _raise_script_error(exc: aioredis.ResponseError) -> NoReturn:
    """Turn a script's `{err = code}` into the domain error it stands for (longest code first)."""
    for key in sorted(_ERRORS, key=len, reverse=True):
        if key in str(exc):
            err = _ERRORS[key]
            raise type(err)(err.message, code=err.code) from None
    raise exc


class ConsultationStore:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time,
                 cipher: FieldCipher | None = None) -> None:
        """`cipher`: seals participants' display names at rest (rooms/crypto.py)."""
        self._r = redis
        self._clock = clock
        self.cipher = cipher or FieldCipher(None)
        self._add = redis.register_script(_ADD_PARTICIPANT)
        self._decide = redis.register_script(_DECIDE)
        self._transition = redis.register_script(_TRANSITION)

    async def create(self, tenant: str, service: str, *, creator: str, creator_role: Role, creator_name: str,
                     scheduled_at: float | None = None, channel: Channel = Channel.VIDEO,
                     audit: bool = False) -> Consultation:
        """A consultation with its creator admitted. A booking system creating a slot is not a participant.
        `audit`: record `consultation.created` by the creator in the same transaction."""
        k = Keys(tenant)
        now = self._clock()
        cid = "c_" + secrets.token_urlsafe(12)
        state = ConsultationState.SCHEDULED if scheduled_at else ConsultationState.WAITING
        fields = new_consultation_fields(cid, tenant, service, creator=creator, now=now, state=state,
                                         scheduled_at=scheduled_at, channel=channel)
        async with self._r.pipeline(transaction=True) as p:
            p.hset(k.consultation(cid), mapping=as_hash(fields))
            if creator_role in (Role.CLINICIAN, Role.NURSE, Role.OPERATOR):
                self.queue_admitted(p, tenant, cid, new_participant(creator, creator_role, creator_name, now))
            if audit:
                entry = Audit(creator, creator_role).entry(Action.CONSULTATION_CREATED, now, consultation_id=cid)
                queue_append(p, tenant, cid, entry)
            await p.execute()
        return await self.get(tenant, cid)

    async def get(self, tenant: str, cid: str) -> Consultation:
        k = Keys(tenant)
        async with self._r.pipeline(transaction=False) as p:
            p.hgetall(k.consultation(cid))
            p.hvals(k.participants(cid))
            h, raw = await p.execute()
        if not h:
            raise NotFound("Fant ikke denne konsultasjonen.", code="consultation_not_found")
        return Consultation.from_redis(h, [self.cipher.participant(tenant, x) for x in raw])

    def queue_admitted(self, pipe: Any, tenant: str, cid: str, person: Participant) -> None:
        """Queue adding an admitted participant in a MULTI pipeline (what `add_participant` in LUA_PARTICIPANT
        does in a script): its json with the name sealed, the subject index, the subject's consultations."""
        k = Keys(tenant)
        pipe.hset(k.participants(cid), person.id, self.cipher.participant_json(tenant, person))
        pipe.hset(k.subjects(cid), person.subject, person.id)
        pipe.sadd(k.my_consultations(person.subject), cid)

    async def add_participant(self, tenant: str, cid: str, *, subject: str, role: Role, display_name: str,
                              state: ParticipantState, audit: bool = False) -> Participant:
        """Join (admitted) or knock (lobby). A subject already present keeps the participant it has.
        `audit`: record `consultation.joined` / `consultation.knocked` by the subject in the same script."""
        k = Keys(tenant)
        p = new_participant(subject, role, display_name, self._clock(), state)
        action = Action.CONSULTATION_KNOCKED if state == ParticipantState.LOBBY else Action.CONSULTATION_JOINED
        entry = Audit(subject, role).entry(action, p.joined_at, consultation_id=cid, participant_id=p.id) \
            if audit else ""
        try:
            raw = await self._add(keys=[k.consultation(cid), k.participants(cid), k.subjects(cid),
                                        k.my_consultations(subject), *audit_keys(tenant, cid)],
                                  args=[p.id, subject, self.cipher.participant_json(tenant, p), entry])
        except aioredis.ResponseError as exc:
            _raise_script_error(exc)
        return self.cipher.participant(tenant, raw)

    async def decide(self, tenant: str, cid: str, participant_id: str, admit: bool,
                     audit: Audit | None = None) -> Participant:
        k = Keys(tenant)
        state = ParticipantState.ADMITTED if admit else ParticipantState.DENIED
        action = Action.CONSULTATION_ADMITTED if admit else Action.CONSULTATION_DENIED
        entry = audit.entry(action, self._clock(), consultation_id=cid, participant_id=participant_id) \
            if audit else ""
        known = await self._r.hget(k.participants(cid), participant_id)  # its subject (never changes)
        subject = json.loads(known)["subject"] if known else ""
        try:
            raw = await self._decide(keys=[k.consultation(cid), k.participants(cid), *audit_keys(tenant, cid),
                                           k.my_consultations(subject)],
                                     args=[participant_id, state.value, entry])
        except aioredis.ResponseError as exc:
            _raise_script_error(exc)
        return self.cipher.participant(tenant, raw)

    async def open(self, tenant: str, cid: str) -> bool:
        """scheduled -> waiting, when the first participant arrives for a booked slot."""
        result = await self._run_transition(tenant, cid, "scheduled", ConsultationState.WAITING, "opened_at", "")
        return result == "ok"

    async def activate(self, tenant: str, cid: str) -> bool:
        """waiting/scheduled -> active, when the conversation starts. False if it already had."""
        result = await self._run_transition(tenant, cid, "scheduled,waiting", ConsultationState.ACTIVE,
                                            "started_at", "")
        return result == "ok"

    async def end(self, tenant: str, cid: str, outcome: Outcome, audit: Audit | None = None) -> Consultation:
        entry = audit.entry(Action.CONSULTATION_ENDED, self._clock(), consultation_id=cid,
                            outcome=outcome.value) if audit else ""
        result = await self._run_transition(tenant, cid, "scheduled,waiting,active", ConsultationState.ENDED,
                                            "ended_at", outcome.value, entry)
        if result != "ok":
            raise Conflict("Konsultasjonen er allerede avsluttet.", code="consultation_ended")
        return await self.get(tenant, cid)

    async def _run_transition(self, tenant: str, cid: str, from_states: str, to: ConsultationState,
                              ts_field: str, outcome: str, entry: str = "") -> str:
        try:
            now = self._clock()
            return text(await self._transition(keys=[Keys(tenant).consultation(cid), Keys(tenant).stats_prefix(),
                                                     *audit_keys(tenant, cid)],
                                               args=[from_states, to.value, ts_field, now, outcome,
                                                     stats.oslo_day(now), entry]))
        except aioredis.ResponseError as exc:
            _raise_script_error(exc)

    @staticmethod
    def state_key(tenant: str, cid: str) -> str:
        """The key `LUA_CONSULTATION_OPEN`'s `consultation_closed` reads (a script's KEYS must name it)."""
        return Keys(tenant).consultation(cid)

    async def past_retention(self, tenant: str, cids: list[str], retention_s: float,
                             now: float | None = None) -> list[str]:
        """Those of `cids` that ended more than `retention_s` ago, or are gone (chat's retention shred)."""
        if not cids:
            return []
        now = self._clock() if now is None else now
        k = Keys(tenant)
        async with self._r.pipeline(transaction=False) as p:
            for cid in cids:
                p.hmget(k.consultation(cid), "state", "ended_at")
            states = await p.execute()
        due = []
        for cid, reply in zip(cids, states, strict=True):
            state, ended_at = optional_texts(reply)
            if state is None or (state == "ended" and ended_at and float(ended_at) + retention_s <= now):
                due.append(cid)
        return due

    async def of_subject(self, tenant: str, subject: str) -> list[str]:
        return sorted(text_set(await self._r.smembers(Keys(tenant).my_consultations(subject))))
