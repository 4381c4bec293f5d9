"""Photo attachments (a rash, a medicine box): JPEG or PNG, recognised by their bytes, never by their name;
HEIC/HEIF (an iPhone's default) is accepted and stored as a JPEG without metadata (chat/heif.py); JPEG and PNG
are stored without their metadata too (chat/photo_metadata.py: no GPS position, camera or time).

Stored sealed with the consultation's data key in one Redis hash per consultation
(`ChatKeys.attachments`), so a shred reaches them together with the messages. The chat message that
carries an attachment holds only its id, type, size and (sealed) file name.

Bytes are budgeted: per participant, per consultation and per tenant, checked and added in the same script
that stores the attachment (nothing is stored over a quota), and a global cap over all tenants checked just
before (best effort: tenants live in different Redis Cluster slots, so one script cannot see them all).
`ChatKeys.bytes` holds the consultation's usage (field `_total` and one field per participant);
`ChatKeys.bytes_total` the tenant's, which the retention shred gives back.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass
from typing import NoReturn

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag

from . import heif, photo_metadata
from .crypto import DataKeys, open_sealed, seal
from .errors import ChatError, HistoryShredded
from .keys import ChatKeys
from .limits import Quotas

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ATTACHMENT_ID = re.compile(r"^a_[A-Za-z0-9_-]{16}$")

# KEYS: attachments, consultation usage, tenant usage   ARGV: id, sealed json, size, participant id,
# participant quota, consultation quota, tenant quota
_PUT = """
local size = tonumber(ARGV[3])
if tonumber(redis.call('HGET', KEYS[2], ARGV[4]) or '0') + size > tonumber(ARGV[5]) then
  return {err = 'quota_participant'} end
if tonumber(redis.call('HGET', KEYS[2], '_total') or '0') + size > tonumber(ARGV[6]) then
  return {err = 'quota_consultation'} end
if tonumber(redis.call('GET', KEYS[3]) or '0') + size > tonumber(ARGV[7]) then
  return {err = 'quota_tenant'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[4], size)
redis.call('HINCRBY', KEYS[2], '_total', size)
return redis.call('INCRBY', KEYS[3], size)
"""

# KEYS: attachments, consultation usage, tenant usage   ARGV: id, participant id
_DISCARD = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return redis.call('GET', KEYS[3]) or 0 end
local size = cjson.decode(raw)['size']
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], -size)
redis.call('HINCRBY', KEYS[2], '_total', -size)
return redis.call('DECRBY', KEYS[3], size)
"""


_QUOTA_MESSAGES = {
    "quota_participant": ("attachment_quota",
                          "Du har sendt så mange bilder i denne konsultasjonen at det ikke er plass til flere."),
    "quota_consultation": ("attachment_quota",
                           "Denne konsultasjonen har ikke plass til flere bilder."),
    "quota_tenant": ("storage_full", "Det er ikke plass til flere bilder akkurat nå. Prøv igjen senere."),
    "quota_global": ("storage_full", "Det er ikke plass til flere bilder akkurat nå. Prøv igjen senere."),
}


def _quota_error(code: str) -> NoReturn:
    wire, message = _QUOTA_MESSAGES[code]
    raise ChatError(wire, message)


def sniff(data: bytes) -> str | None:
    """The image type the bytes really are (image/jpeg, image/png), or None."""
    if data.startswith(PNG_MAGIC) and len(data) > 33 and data[12:16] == b"IHDR":
        return "image/png"
    if data.startswith(JPEG_MAGIC) and len(data) > 4:
        return "image/jpeg"
    return None


def safe_name(name: object, content_type: str) -> str:
    """A display file name: printable, short, with the extension of what the bytes are."""
    stem = re.sub(r"[^\w .-]", "_", name if isinstance(name, str) else "")[:60].strip(" .") or "bilde"
    stem = re.sub(r"\.(jpe?g|png|gif|webp|heic|heif|exe|pdf|html?)$", "", stem, flags=re.IGNORECASE) or "bilde"
    return stem + (".png" if content_type == "image/png" else ".jpg")


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    content_type: str
    size: int
    data: bytes


def _aad(tenant: str, cid: str, aid: str, content_type: str) -> str:
    return f"nettlege-chat-attachment-v1|{tenant}|{cid}|{aid}|{content_type}"


class AttachmentStore:
    def __init__(self, redis: aioredis.Redis, keys: DataKeys, max_bytes: int, quotas: Quotas | None = None,
                 tenants: tuple[str, ...] = ()) -> None:
        """`tenants`: every configured tenant, whose usage the global cap adds up."""
        self._r = redis
        self._keys = keys
        self.max_bytes = max_bytes
        self.quotas = quotas or Quotas()
        self.tenants = tenants
        self._put = redis.register_script(_PUT)
        self._discard = redis.register_script(_DISCARD)
        self.stored_bytes: dict[str, int] = {}  # tenant -> bytes, as last seen (the Prometheus gauge)

    def check(self, data: object) -> str:
        """The content type of an acceptable attachment, else a ChatError saying what is wrong."""
        if not isinstance(data, bytes | bytearray):
            raise ChatError("invalid_event", "Vedlegget må sendes som binærdata (bytes).")
        if len(data) > self.max_bytes:
            raise ChatError("attachment_too_large",
                            f"Bildet er for stort. Største tillatte størrelse er {self.max_bytes // (1024 * 1024)} MB.")
        if not data:
            raise ChatError("attachment_empty", "Vedlegget er tomt.")
        if heif.is_heif(bytes(data)):
            return "image/jpeg"  # what it is stored as: `put` converts it
        content_type = sniff(bytes(data))
        if content_type is None:
            raise ChatError("attachment_type", "Bare bilder i JPEG-, PNG- eller HEIC-format kan sendes.")
        return content_type

    async def usage(self, tenant: str) -> int:
        """Attachment bytes the tenant stores now (also refreshes `stored_bytes`)."""
        n = int(await self._r.get(ChatKeys(tenant).bytes_total()) or 0)
        self.stored_bytes[tenant] = n
        return n

    async def global_usage(self, tenant: str) -> int:
        """Attachment bytes all tenants store now (refreshes `stored_bytes`)."""
        tenants = self.tenants or (tenant,)
        async with self._r.pipeline(transaction=False) as p:  # one slot per tenant: not one transaction
            for t in tenants:
                p.get(ChatKeys(t).bytes_total())
            values = await p.execute()
        self.stored_bytes.update({t: int(v or 0) for t, v in zip(tenants, values, strict=True)})
        return sum(int(v or 0) for v in values)

    async def put(self, tenant: str, cid: str, data: bytes, content_type: str, *, owner: str) -> tuple[str, int]:
        """Store an attachment of participant `owner`: its id and the bytes stored (metadata stripped), or refuse
        it (ChatError) when a quota would be exceeded. A HEIC/HEIF photo is stored as the JPEG it converts to
        (decoded off the event loop)."""
        if heif.is_heif(data):
            data = await asyncio.to_thread(heif.to_jpeg, data)
            content_type = "image/jpeg"
        else:  # no GPS position, camera or time stored with the photo (lossless; see chat/photo_metadata.py)
            data = photo_metadata.strip(bytes(data), content_type)
        size = len(data)
        q = self.quotas
        if await self.global_usage(tenant) + size > q.global_bytes:
            _quota_error("quota_global")
        aid = "a_" + secrets.token_urlsafe(12)
        key = await self._keys.get_or_create(tenant, cid)
        sealed = seal(key, bytes(data), _aad(tenant, cid, aid, content_type))
        k = ChatKeys(tenant)
        try:
            total = await self._put(
                keys=[k.attachments(cid), k.bytes(cid), k.bytes_total()],
                args=[aid, json.dumps({"type": content_type, "size": size, "ct": sealed, "owner": owner}), size,
                      owner, q.participant_bytes, q.consultation_bytes, q.tenant_bytes])
        except aioredis.ResponseError as exc:
            code = next((c for c in _QUOTA_MESSAGES if c in str(exc)), None)
            if code is None:
                raise
            _quota_error(code)
        self.stored_bytes[tenant] = int(total)
        return aid, size

    async def discard(self, tenant: str, cid: str, aid: str, *, owner: str) -> None:
        """Remove an attachment (a retry's second copy) and give its bytes back."""
        k = ChatKeys(tenant)
        total = await self._discard(keys=[k.attachments(cid), k.bytes(cid), k.bytes_total()],
                                    args=[aid, owner])
        self.stored_bytes[tenant] = int(total)

    async def get(self, tenant: str, cid: str, aid: str) -> Attachment:
        if not ATTACHMENT_ID.match(aid):
            raise ChatError("attachment_not_found", "Fant ikke dette vedlegget.")
        raw = await self._r.hget(ChatKeys(tenant).attachments(cid), aid)
        if raw is None:
            raise ChatError("attachment_not_found", "Fant ikke dette vedlegget.")
        meta = json.loads(raw)
        key = await self._keys.get(tenant, cid)
        if key is None:
            raise HistoryShredded()
        try:
            data = open_sealed(key, meta["ct"], _aad(tenant, cid, aid, meta["type"]))
        except (InvalidTag, ValueError, KeyError):
            raise ChatError("attachment_unreadable", "Vedlegget kunne ikke leses.") from None
        return Attachment(aid, meta["type"], len(data), data)
