"""Chat messages of a consultation: an encrypted Redis Stream, idempotent by client_id.

A message is stored by one Lua script that checks the consultation (exists, not ended: rooms' check), returns the
first answer for a repeated (participant, client_id), counts the sender's rate, and appends to the stream
-- all or nothing. Only after it returns is the sender acked and the message broadcast. The stream id is
the message `id` and the resync cursor (`history after_id`).

Stored per entry: `mid` (random id bound into the ciphertext), `pid` and `role` of the sender, `kind`
(`text` | `attachment`), `ts`, and `ct`: the sealed JSON body {text, name, attachment?}. Text and names
never reach Redis in plaintext.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag

from rooms.consultations import LUA_CONSULTATION_OPEN, ConsultationStore
from rooms.redis_types import hash_fields, stream_entries, text_or_none, texts

from .crypto import DataKeys, open_sealed, seal
from .errors import ChatError, HistoryShredded
from .keys import ChatKeys
from .limits import ChatLimits

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SHREDDED_TTL_S = 24 * 3600  # ciphertext left behind by a shred expires a day later

# KEYS: consultation state (rooms'), stream, client ids, rate   ARGV: dedupe field, rate limit, window s, ts, fields...
_APPEND = LUA_CONSULTATION_OPEN + """
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then return {0, existing} end
local closed = consultation_closed(KEYS[1])
if closed then return {err = closed} end
local n = redis.call('INCR', KEYS[4])
if n == 1 then redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]) + 1) end
if n > tonumber(ARGV[2]) then return {err = 'rate_limited'} end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
local answer = id .. '|' .. ARGV[4]
redis.call('HSET', KEYS[3], ARGV[1], answer)
return {1, answer}
"""

# Read receipts only move forward and never past the last message.  KEYS: reads, stream  ARGV: pid, up_to
_READ = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last == 0 then return false end
local up_to = ARGV[2]
if less(last[1][1], up_to) then up_to = last[1][1] end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and not less(current, up_to) then return false end
redis.call('HSET', KEYS[1], ARGV[1], up_to)
return up_to
"""

# Crypto-shred one consultation's chat and give its attachment bytes back to the tenant's quota, at once.
# KEYS: data key, client ids, reads, keyed index, messages, attachments, bytes, tenant bytes  ARGV: cid, ttl
_SHRED = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[6], tonumber(ARGV[2]))
local used = tonumber(redis.call('HGET', KEYS[7], '_total') or '0')
if used > 0 then redis.call('DECRBY', KEYS[8], used) end
redis.call('DEL', KEYS[7])
return used
"""

_SCRIPT_ERRORS = {
    "consultation_not_found": "Fant ikke denne konsultasjonen.",
    "consultation_ended": "Konsultasjonen er avsluttet. Du kan lese samtalen, men ikke skrive mer.",
    "rate_limited": "Du sender meldinger for fort. Vent litt og prøv igjen.",
}


@dataclass(frozen=True, slots=True)
class Sender:
    participant_id: str
    role: str
    display_name: str

    def public(self) -> dict[str, str]:
        return {"participant_id": self.participant_id, "role": self.role, "display_name": self.display_name}


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    consultation_id: str
    sender: Sender
    text: str
    ts: float
    attachment: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "consultation_id": self.consultation_id,
                               "sender": self.sender.public(), "text": self.text, "ts": self.ts}
        if self.attachment is not None:
            out["attachment"] = self.attachment
        return out


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    ts: float
    created: bool  # False: a retry of a message already stored; nothing new to broadcast


def _message_aad(tenant: str, cid: str, mid: str, pid: str, kind: str, ts: str) -> str:
    return f"nettlege-chat-msg-v1|{tenant}|{cid}|{mid}|{pid}|{kind}|{ts}"


class MessageStore:
    def __init__(self, redis: aioredis.Redis, keys: DataKeys, limits: ChatLimits,
                 clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self.keys = keys
        self.limits = limits
        self._clock = clock
        self._append = redis.register_script(_APPEND)
        self._read = redis.register_script(_READ)
        self._shred = redis.register_script(_SHRED)

    async def append(self, tenant: str, cid: str, sender: Sender, client_id: str, text: str,
                     attachment: dict[str, Any] | None = None) -> Stored:
        """Store a message once per (sender, client_id); a repeat returns the first answer."""
        k = ChatKeys(tenant)
        dedupe = f"{sender.participant_id}:{client_id}"
        data_key = await self.keys.get_or_create(tenant, cid)
        now = self._clock()
        ts = f"{now:.3f}"
        kind = "attachment" if attachment else "text"
        mid = "m_" + secrets.token_urlsafe(12)
        body: dict[str, Any] = {"text": text, "name": sender.display_name}
        if attachment:
            body["attachment"] = attachment
        ct = seal(data_key, json.dumps(body, ensure_ascii=False).encode(),
                  _message_aad(tenant, cid, mid, sender.participant_id, kind, ts))
        window = int(now // self.limits.window_s)
        fields = {"mid": mid, "pid": sender.participant_id, "role": sender.role, "kind": kind, "ts": ts, "ct": ct}
        try:
            created, answer = await self._append(
                keys=[ConsultationStore.state_key(tenant, cid), k.messages(cid), k.client_ids(cid),
                      k.rate(sender.participant_id, window)],
                args=[dedupe, self.limits.messages_per_window, self.limits.window_s, ts,
                      *[x for kv in fields.items() for x in kv]])
        except aioredis.ResponseError as exc:
            for code, message in _SCRIPT_ERRORS.items():
                if code in str(exc):
                    retry = self.limits.window_s - int(now % self.limits.window_s) if code == "rate_limited" \
                        else None
                    raise ChatError(code, message, retry_after_s=retry) from None
            raise
        return _stored(answer, created=bool(created))

    async def previous(self, tenant: str, cid: str, participant_id: str, client_id: str) -> Stored | None:
        """The first answer to a (sender, client_id) already stored, or None: lets a retried upload be answered
        before its bytes are stored (and counted against a quota) a second time."""
        answer = text_or_none(await self._r.hget(ChatKeys(tenant).client_ids(cid), f"{participant_id}:{client_id}"))
        return _stored(answer, created=False) if answer else None

    async def history(self, tenant: str, cid: str, after_id: str | None = None,
                      limit: int | None = None, since: float | None = None) -> tuple[list[Message], bool]:
        """Messages after `after_id` (exclusive; None: from the start), oldest first, and whether more follow.
        `since`: none sent before this time (a participant who sees the chat from joining only)."""
        limit = min(limit or self.limits.max_history, self.limits.max_history)
        start = f"({after_id}" if after_id else "-"
        if since is not None:
            floor = f"{int(since * 1000)}-0"  # stream ids begin with the Redis time in ms
            if after_id is None or _id_key(after_id) < _id_key(floor):
                start = floor
        rows = stream_entries(await self._r.xrange(ChatKeys(tenant).messages(cid), min=start, count=limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        if not rows:
            return [], False
        data_key = await self.keys.get(tenant, cid)
        if data_key is None:
            raise HistoryShredded()
        return [self._open(tenant, cid, data_key, entry_id, f) for entry_id, f in rows], more

    async def one(self, tenant: str, cid: str, entry_id: str) -> Message | None:
        rows = stream_entries(await self._r.xrange(ChatKeys(tenant).messages(cid), min=entry_id, max=entry_id))
        if not rows:
            return None
        data_key = await self.keys.get(tenant, cid)
        if data_key is None:
            raise HistoryShredded()
        return self._open(tenant, cid, data_key, *rows[0])

    async def all(self, tenant: str, cid: str) -> list[Message]:
        out: list[Message] = []
        after: str | None = None
        while True:
            batch, more = await self.history(tenant, cid, after)
            out.extend(batch)
            if not more or not batch:
                return out
            after = batch[-1].id

    def _open(self, tenant: str, cid: str, data_key: bytes, entry_id: str, f: dict[str, str]) -> Message:
        try:
            body = json.loads(open_sealed(data_key, f["ct"],
                                          _message_aad(tenant, cid, f["mid"], f["pid"], f["kind"], f["ts"])))
        except (InvalidTag, KeyError, ValueError):
            raise ChatError("message_unreadable", "En melding kunne ikke leses.") from None
        return Message(id=entry_id, consultation_id=cid,
                       sender=Sender(f["pid"], f["role"], body.get("name", "")), text=body.get("text", ""),
                       ts=float(f["ts"]), attachment=body.get("attachment"))

    async def mark_read(self, tenant: str, cid: str, participant_id: str, up_to_id: str) -> str | None:
        """Move the participant's read marker forward; the new marker, or None when it did not move."""
        k = ChatKeys(tenant)
        return text_or_none(await self._read(keys=[k.reads(cid), k.messages(cid)],
                                             args=[participant_id, up_to_id]))

    async def reads(self, tenant: str, cid: str) -> dict[str, str]:
        return hash_fields(await self._r.hgetall(ChatKeys(tenant).reads(cid)))

    async def keyed(self, tenant: str) -> list[str]:
        """Consultations of the tenant that have a chat data key (what the retention round looks at)."""
        return texts(await self._r.zrange(ChatKeys(tenant).keyed(), 0, -1))

    async def shred(self, tenant: str, cids: list[str]) -> list[str]:
        """Delete these consultations' data keys (the caller picked those past retention, through the consultation
        store). The ciphertext left behind is unreadable at once and expires a day later. Returns `cids`."""
        k = ChatKeys(tenant)
        for cid in cids:
            await self._shred(keys=[k.data_key(cid), k.client_ids(cid), k.reads(cid), k.keyed(),
                                    k.messages(cid), k.attachments(cid), k.bytes(cid), k.bytes_total()],
                              args=[cid, SHREDDED_TTL_S])
            self.keys.forget(tenant, cid)
        return cids


def _stored(answer: str, *, created: bool) -> Stored:
    entry_id, _, ts = answer.partition("|")
    return Stored(id=entry_id, ts=float(ts), created=created)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def valid_stream_id(value: object) -> bool:
    return isinstance(value, str) and bool(STREAM_ID.match(value))
