"""Fixed-window rate limits in Redis, so every process of a deployment counts against one limit.

A change that has its own script counts its limit inside it (`LUA_RATE`, with the key and limit of a `RateSlot`),
so the count and the change are one round trip; anything else calls `hit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from .errors import RateLimited
from .keys import Keys

# For scripts: count one action in `key`; true when that was more than `limit` in the window.
LUA_RATE = """
local function rate_exceeded(key, limit, window_s)
  local n = redis.call('INCR', key)
  redis.call('EXPIRE', key, window_s + 1)
  return n > limit
end
"""


@dataclass(frozen=True, slots=True)
class RateSlot:
    """One count against a limit in the current window: what a script passes to `rate_exceeded`."""

    key: str
    limit: int
    window_s: int
    retry_after_s: int  # when the next window opens

    def refused(self) -> RateLimited:
        return RateLimited(f"For mange forespørsler. Prøv igjen om {self.retry_after_s} sekunder.",
                           retry_after_s=self.retry_after_s)


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._r = redis
        self._clock = clock

    def slot(self, tenant: str, subject: str, bucket: str, *, limit: int, window_s: int) -> RateSlot:
        """The window `subject`'s next action in `bucket` counts in, for a script that counts it itself."""
        now = self._clock()
        window = int(now // window_s)
        return RateSlot(Keys(tenant).rate(subject, bucket, window), limit, window_s,
                        int((window + 1) * window_s - now) + 1)

    async def hit(self, tenant: str, subject: str, bucket: str, *, limit: int, window_s: int) -> None:
        """Count one action; RateLimited when `subject` did more than `limit` in the current window."""
        slot = self.slot(tenant, subject, bucket, limit=limit, window_s=window_s)
        async with self._r.pipeline(transaction=True) as p:
            p.incr(slot.key)
            p.expire(slot.key, window_s + 1)
            count, _ = await p.execute()
        if count > limit:
            raise slot.refused()
