"""Opening the Redis connection and the Store over it.

Four deployments, one code path (see README "Deployment: Redis"):
- embedded: no Redis configured; an in-process fakeredis (demos, `make run`), nothing durable;
- single: REDIS_URL, one redis-server;
- sentinel: REDIS_SENTINELS + REDIS_SENTINEL_MASTER; every connection asks the Sentinels for the current
  primary, so a failover is followed without a restart;
- cluster: REDIS_CLUSTER_URL; all keys of one tenant share a hash slot (`Keys`), the node registry has its own.

Connection errors (the primary died, a failover is under way) are retried with exponential backoff for a
bounded time (`RedisSettings.retry_s`); after that the caller gets the ConnectionError and answers 503 /
an `error` event with `retry_after_s`. With `min_replicas_ack` > 0 an ack is only given once `WAIT` says
that many replicas hold every write before it (`Store.durable`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import EqualJitterBackoff

from .audit import AuditLog
from .bookings import BookingStore
from .consultations import ConsultationStore
from .crypto import FieldCipher
from .errors import NotReplicated
from .events import EventBus
from .invites import InviteStore
from .nodes import NodeRegistry
from .queue import QueueStore
from .ratelimit import RateLimiter
from .service import Rooms
from .service_settings import SettingsStore
from .stats import StatsStore

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
DURABLE_PROBE = "nl:{durable}:probe"  # written right before WAIT, so WAIT covers every earlier write
CLUSTER_SCHEME = "redis+cluster://"
REPLICA_CHECK_S = 1.0  # how long a look at the primary's connected replicas is trusted


@dataclass
class StoreHealth:
    """Plain counters, read by the Prometheus collector at scrape time (signaling/metrics.py)."""

    reconnects: int = 0  # a command or connect failed with a connection error and was retried
    failovers: int = 0  # Sentinel named a different primary than before
    wait_timeouts: int = 0  # WAIT returned fewer replicas than REDIS_MIN_REPLICAS_ACK

    def __deepcopy__(self, memo: dict[int, Any]) -> StoreHealth:
        return self  # redis-py deep-copies the Retry per connection; the counters stay shared


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None
    cluster_url: str | None = None
    min_replicas_ack: int = 0
    wait_timeout_ms: int = 1000
    retry_s: float = 5.0  # how long connection errors are retried before the caller sees them
    max_connections: int = 64
    health: StoreHealth = field(default_factory=StoreHealth, compare=False)

    @classmethod
    def from_url(cls, url: str | None, **kwargs: Any) -> RedisSettings:
        """`redis://` is one server; `redis+cluster://host:port` (any node) a Redis Cluster."""
        if url and url.startswith(CLUSTER_SCHEME):
            return cls(cluster_url="redis://" + url[len(CLUSTER_SCHEME):], **kwargs)
        return cls(url=url, **kwargs)

    @property
    def kind(self) -> str:
        if self.sentinels:
            return "sentinel"
        if self.cluster_url:
            return "cluster"
        return "single" if self.url else "embedded"

    def socketio_url(self) -> str | None:
        """The URL python-socketio's AsyncRedisManager understands (it speaks `redis+sentinel://`)."""
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"redis+sentinel://{hosts}/0/{self.sentinel_master}"
        return self.url


class CountingRetry(Retry):
    """redis-py's Retry, counting each retried failure as a reconnect (for /metrics)."""

    def __init__(self, health: StoreHealth, retry_s: float) -> None:
        # Backoff 0.1, 0.2, ... capped at 1 s (each between half and all of that: jitter, so processes do not
        # retry in step): the first retries are quick (a dropped connection), the later ones wait out a
        # Sentinel failover (down-after + election, a few seconds). As many as add up to about `retry_s`.
        retries, expected = 0, 0.0
        while expected < retry_s:
            retries += 1
            expected += 0.75 * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** retries)
        super().__init__(EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), retries)
        self.health = health

    async def call_with_retry(self, do: Any, fail: Any, is_retryable: Any = None,
                              with_failure_count: bool = False) -> Any:
        health = self.health

        def counted(*args: Any) -> Any:
            health.reconnects += 1
            return fail(*args)
        return await super().call_with_retry(do, counted, is_retryable, with_failure_count)


class _SentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (asks for the primary on every connect), bounded and waiting for a free connection
    under a burst like the single-server pool; counts a changed primary as a failover."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, health: StoreHealth, **kwargs: Any) -> None:
        # redis-py leaves SentinelConnectionPool.__init__ unannotated.
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self.health = health

    async def get_master_address(self) -> Any:
        # SentinelConnectionPool's own logic, with the count: no await between the check and the update, so
        # connections reconnecting at once count one failover, not one each.
        address = await self.sentinel_manager.discover_master(self.service_name)
        if self.master_address != address:
            if self.master_address is not None:
                self.health.failovers += 1
                log.warning("Redis primary changed (failover): now %s:%s", *address)
            self.master_address = address
            await self.disconnect(inuse_connections=False)  # idle connections reconnect to the new primary
        return address


def connect(target: RedisSettings | str | None, max_connections: int = 64) -> aioredis.Redis:
    """A redis-py asyncio client for the configured deployment; with nothing configured an in-process
    fakeredis speaking the same protocol (for `make run` and demos: it keeps nothing across restarts)."""
    s = target if isinstance(target, RedisSettings) else RedisSettings.from_url(target,
                                                                                max_connections=max_connections)
    retry = CountingRetry(s.health, s.retry_s)
    common: dict[str, Any] = {"decode_responses": True, "retry": retry, "socket_connect_timeout": 2,
                              "health_check_interval": 30}
    if s.sentinels:
        # Sentinels answer quickly or are down: a short timeout so a dead one is skipped, not waited for.
        sentinel = Sentinel(list(s.sentinels), sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1,
                                                                "decode_responses": True})
        pool: aioredis.BlockingConnectionPool = _SentinelPool(s.sentinel_master or "", sentinel, s.health,
                                                              max_connections=s.max_connections, timeout=10,
                                                              **common)
        return aioredis.Redis(connection_pool=pool)
    if s.cluster_url:
        cluster = RedisCluster.from_url(s.cluster_url, decode_responses=True, retry=retry,
                                        max_connections=s.max_connections, socket_connect_timeout=2)
        # No subclass of Redis, but it answers every command the stores send (their keys share a slot).
        return cast(aioredis.Redis, cluster)
    if s.url:
        # A bounded pool that waits for a free connection instead of failing under a burst.
        pool = aioredis.BlockingConnectionPool.from_url(s.url, max_connections=s.max_connections, timeout=10,
                                                        **common)
        return aioredis.Redis(connection_pool=pool)
    import fakeredis  # imported lazily: production never needs it

    log.warning("no Redis configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_URL): using the embedded "
                "in-process store; nothing is durable")
    return fakeredis.FakeAsyncRedis(decode_responses=True)


class Durability:
    """Acked means replicated: `confirm()` returns only when `replicas` replicas hold every write made before
    it (on any connection of this process: the primary's replication stream is one ordered log)."""

    def __init__(self, redis: aioredis.Redis, replicas: int, timeout_ms: int, health: StoreHealth,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._r = redis
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.health = health
        self._clock = clock
        self._seen: tuple[float, int] | None = None  # (when, replicas connected to the primary)

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    def _refuse(self) -> NotReplicated:
        return NotReplicated("Endringen kunne ikke sikres på flere servere. Prøv igjen om litt.",
                             retry_after_s=max(1, math.ceil(self.timeout_ms / 1000)))

    async def admit(self) -> None:
        """Before a write: refuse at once when the primary has fewer replicas connected than required (a
        write that could never be confirmed is not made). Trusted for REPLICA_CHECK_S."""
        if not self.enabled:
            return
        now = self._clock()
        if self._seen is None or now - self._seen[0] > REPLICA_CHECK_S:
            role = await self._r.execute_command("ROLE")
            connected = len(role[2]) if role and role[0] == "master" else 0
            self._seen = (now, connected)
        if self._seen[1] < self.replicas:
            raise self._refuse()

    async def confirm(self) -> None:
        """After the writes, before the ack: WAIT for the replicas, else NotReplicated (retryable)."""
        if not self.enabled:
            return
        async with self._r.pipeline(transaction=False) as p:  # one connection: WAIT counts its own writes
            p.incr(DURABLE_PROBE)
            p.wait(self.replicas, self.timeout_ms)
            _, acked = await p.execute()
        if acked < self.replicas:
            self.health.wait_timeouts += 1
            self._seen = None
            log.warning("WAIT: %d of %d replicas acknowledged within %d ms", acked, self.replicas,
                        self.timeout_ms)
            raise self._refuse()


class Store:
    """Everything nettlege keeps, over one Redis connection. Built once by the app, closed on shutdown."""

    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time,
                 settings: RedisSettings | None = None, cipher: FieldCipher | None = None) -> None:
        """`cipher`: seals personal fields (names, reasons, phone numbers) at rest; None keeps them plain."""
        self.redis = redis
        self.settings = settings or RedisSettings()
        self.health = self.settings.health
        self.durability = Durability(redis, self.settings.min_replicas_ack, self.settings.wait_timeout_ms,
                                     self.health)
        self.consultations = ConsultationStore(redis, clock, cipher)
        self.queue = QueueStore(redis, self.consultations, clock)
        self.invites = InviteStore(redis, clock, cipher)
        self.audit = AuditLog(redis, clock)
        self.events = EventBus(redis)
        self.rate = RateLimiter(redis, clock)
        self.stats = StatsStore(redis)
        self.bookings = BookingStore(redis, self.consultations, clock)
        self.service_settings = SettingsStore(redis)  # opening hours and closures set at runtime
        self.clock = clock
        # The node registry, set by the composition root when this process is a node (signaling/placement.py).
        self.nodes: NodeRegistry | None = None
        self.rooms = Rooms(self)  # the use cases over all of the above (rooms/service.py)

    @classmethod
    def open(cls, settings: RedisSettings, clock: Callable[[], float] = time.time,
             cipher: FieldCipher | None = None) -> Store:
        return cls(connect(settings), clock, settings, cipher)

    async def durable(self) -> None:
        """Call after a change and before acking it: with REDIS_MIN_REPLICAS_ACK=N waits until N replicas
        have it (NotReplicated otherwise: the client retries, idempotent by client_id where it matters)."""
        await self.durability.confirm()

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """True when a primary answers (not a replica, not the dead one): for /readyz. Bounded, no retry wait."""
        try:
            async with asyncio.timeout(timeout_s):
                if self.settings.kind in ("single", "sentinel"):
                    role = await self.redis.execute_command("ROLE")
                    return bool(role) and role[0] == "master"
                return bool(await self.redis.ping())
        except (aioredis.RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self.redis.aclose()
