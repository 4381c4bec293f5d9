"""The chat's persistence, over the same Redis as rooms/: data keys, messages, attachments."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from .attachments import AttachmentStore
from .crypto import DataKeys
from .limits import ChatLimits
from .messages import MessageStore


class ChatStore:
    def __init__(self, redis: aioredis.Redis, master_key: bytes, limits: ChatLimits | None = None,
                 clock: Callable[[], float] = time.time, tenants: tuple[str, ...] = ()) -> None:
        """`tenants`: every configured tenant (the global attachment cap adds up their usage)."""
        self.limits = limits or ChatLimits()
        self.keys = DataKeys(redis, master_key, cache_s=self.limits.data_key_cache_s)
        self.messages = MessageStore(redis, self.keys, self.limits, clock)
        self.attachments = AttachmentStore(redis, self.keys, self.limits.max_attachment_bytes,
                                           self.limits.quotas, tenants)
