"""Photo attachments (a rash, a medicine box): JPEG or PNG, recognised by their bytes, never by their name.

Stored sealed with the consultation's data key in one Redis hash per consultation
(`Keys.chat_attachments`), so a shred reaches them together with the messages. The chat message that
carries an attachment holds only its id, type, size and (sealed) file name.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag

from rooms.keys import Keys

from .crypto import DataKeys, open_sealed, seal
from .errors import ChatError, HistoryShredded

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ATTACHMENT_ID = re.compile(r"^a_[A-Za-z0-9_-]{16}$")


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
    stem = re.sub(r"\.(jpe?g|png|gif|webp|exe|pdf|html?)$", "", stem, flags=re.IGNORECASE) or "bilde"
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
    def __init__(self, redis: aioredis.Redis, keys: DataKeys, max_bytes: int) -> None:
        self._r = redis
        self._keys = keys
        self.max_bytes = max_bytes

    def check(self, data: object) -> str:
        """The content type of an acceptable attachment, else a ChatError saying what is wrong."""
        if not isinstance(data, bytes | bytearray):
            raise ChatError("invalid_event", "Vedlegget må sendes som binærdata (bytes).")
        if len(data) > self.max_bytes:
            raise ChatError("attachment_too_large",
                            f"Bildet er for stort. Største tillatte størrelse er {self.max_bytes // (1024 * 1024)} MB.")
        if not data:
            raise ChatError("attachment_empty", "Vedlegget er tomt.")
        content_type = sniff(bytes(data))
        if content_type is None:
            raise ChatError("attachment_type", "Bare bilder i JPEG- eller PNG-format kan sendes.")
        return content_type

    async def put(self, tenant: str, cid: str, data: bytes, content_type: str) -> str:
        aid = "a_" + secrets.token_urlsafe(12)
        key = await self._keys.get_or_create(tenant, cid)
        sealed = seal(key, bytes(data), _aad(tenant, cid, aid, content_type))
        await self._r.hset(Keys(tenant).chat_attachments(cid), aid,
                           json.dumps({"type": content_type, "size": len(data), "ct": sealed}))
        return aid

    async def discard(self, tenant: str, cid: str, aid: str) -> None:
        await self._r.hdel(Keys(tenant).chat_attachments(cid), aid)

    async def get(self, tenant: str, cid: str, aid: str) -> Attachment:
        if not ATTACHMENT_ID.match(aid):
            raise ChatError("attachment_not_found", "Fant ikke dette vedlegget.")
        raw = await self._r.hget(Keys(tenant).chat_attachments(cid), aid)
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
