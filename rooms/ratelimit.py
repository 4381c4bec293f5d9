"""Fixed-window rate limits in Redis, so every process of a deployment counts against one limit."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

from .errors import RateLimited
from .keys import Keys


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._clock = clock

    async def hit(self, tenant: str, subject: str, bucket: str, *, limit: int, window_s: int) -> None:
        """Count one action; RateLimited when `subject` did more than `limit` in the current window."""
        now = self._clock()
        window = int(now // window_s)
        key = Keys(tenant).rate(subject, bucket, window)
        async with self._r.pipeline(transaction=True) as p:
            p.incr(key)
            p.expire(key, window_s + 1)
            count, _ = await p.execute()
        if count > limit:
            retry = int((window + 1) * window_s - now) + 1
            raise RateLimited(f"For mange forespørsler. Prøv igjen om {retry} sekunder.", retry_after_s=retry)
