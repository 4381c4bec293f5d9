"""Opening the Redis connection: real Redis when REDIS_URL is given, else the embedded fakeredis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from .audit import AuditLog
from .consultations import ConsultationStore
from .events import EventBus
from .invites import InviteStore
from .queue import QueueStore
from .ratelimit import RateLimiter
from .stats import StatsStore

log = logging.getLogger(__name__)


def connect(url: str | None, max_connections: int = 64) -> aioredis.Redis:
    """A redis-py asyncio client; with no URL an in-process fakeredis speaking the same protocol.

    The embedded store is for `make run` and single-process demos: it keeps nothing across restarts.
    """
    if url:
        # A bounded pool that waits for a free connection instead of failing under a burst.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10,
                                                        decode_responses=True, health_check_interval=30)
        return aioredis.Redis(connection_pool=pool)
    import fakeredis  # imported lazily: production never needs it

    log.warning("REDIS_URL is not set: using the embedded in-process store; nothing is durable")
    return fakeredis.FakeAsyncRedis(decode_responses=True)


class Store:
    """Everything nettlege keeps, over one Redis connection. Built once by the app, closed on shutdown."""

    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.consultations = ConsultationStore(redis, clock)
        self.queue = QueueStore(redis, self.consultations, clock)
        self.invites = InviteStore(redis, clock)
        self.audit = AuditLog(redis, clock)
        self.events = EventBus(redis)
        self.rate = RateLimiter(redis, clock)
        self.stats = StatsStore(redis)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
            return False

    async def close(self) -> None:
        await self.redis.aclose()
