"""Encryption at rest: one AES-256-GCM data key per consultation, wrapped by the master key.

- The data key is random (32 bytes), wrapped with AES-GCM under the master key, with the tenant and
  consultation id as associated data, and stored base64 in Redis (`ChatKeys.data_key`). A wrapped key
  copied to another consultation or tenant does not unwrap.
- Every message and attachment is sealed with the data key: a fresh 96-bit nonce, and associated data
  naming tenant, consultation and the item's own id (and, for messages, its sender, kind and time),
  so a ciphertext moved to another message, consultation or tenant fails to open.
- Deleting the wrapped key (crypto-shredding) makes everything sealed with it unreadable. A process keeps
  an unwrapped key in memory at most `cache_s` seconds, so a shred reaches every process within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rooms.crypto import open_sealed, seal
from rooms.redis_types import text_or_none

from .errors import HistoryShredded
from .keys import ChatKeys

__all__ = ["CACHE_MAX", "DataKeys", "open_sealed", "seal"]  # the AES-GCM primitive lives in rooms/crypto.py

_WRAP_AAD = "nettlege-chat-key-v1|{tenant}|{cid}"
CACHE_MAX = 20_000


class DataKeys:
    """Get, create and shred per-consultation data keys. Knows nothing of messages."""

    def __init__(self, redis: aioredis.Redis, master_key: bytes, *, cache_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if len(master_key) != 32:
            raise ValueError("the chat master key must be 32 bytes")
        self._r = redis
        self._master = master_key
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[bytes, float]] = {}

    def _wrap_aad(self, tenant: str, cid: str) -> str:
        return _WRAP_AAD.format(tenant=tenant, cid=cid)

    def _remember(self, tenant: str, cid: str, key: bytes) -> bytes:
        if len(self._cache) >= CACHE_MAX:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(tenant, cid)] = (key, self._clock() + self._cache_s)
        return key

    def _cached(self, tenant: str, cid: str) -> bytes | None:
        hit = self._cache.get((tenant, cid))
        if hit is None:
            return None
        if hit[1] < self._clock():
            self._cache.pop((tenant, cid), None)
            return None
        return hit[0]

    def _unwrap(self, tenant: str, cid: str, wrapped: str) -> bytes:
        try:
            return open_sealed(self._master, wrapped, self._wrap_aad(tenant, cid))
        except (InvalidTag, ValueError):
            # A key wrapped under another master key (rotated without re-wrapping) or tampered with.
            raise HistoryShredded() from None

    async def get(self, tenant: str, cid: str) -> bytes | None:
        """The consultation's data key, or None when it has none (never had one, or it was shredded)."""
        key = self._cached(tenant, cid)
        if key is not None:
            return key
        wrapped = text_or_none(await self._r.get(ChatKeys(tenant).data_key(cid)))
        if wrapped is None:
            return None
        return self._remember(tenant, cid, self._unwrap(tenant, cid, wrapped))

    async def get_or_create(self, tenant: str, cid: str) -> bytes:
        key = await self.get(tenant, cid)
        if key is not None:
            return key
        k = ChatKeys(tenant)
        fresh = AESGCM.generate_key(bit_length=256)
        wrapped = seal(self._master, fresh, self._wrap_aad(tenant, cid))
        async with self._r.pipeline(transaction=True) as p:
            p.set(k.data_key(cid), wrapped, nx=True)
            p.zadd(k.keyed(), {cid: time.time()}, nx=True)
            created, _ = await p.execute()
        if created:
            return self._remember(tenant, cid, fresh)
        # Another process created it first: use theirs.
        winner = text_or_none(await self._r.get(k.data_key(cid)))
        if winner is None:  # pragma: no cover - shredded in between
            raise HistoryShredded()
        return self._remember(tenant, cid, self._unwrap(tenant, cid, winner))

    def forget(self, tenant: str, cid: str) -> None:
        self._cache.pop((tenant, cid), None)
