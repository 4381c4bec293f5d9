"""Fixtures for real components: a private redis-server (pytest-redis), the embedded store, the app."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pytest_redis import factories

from rooms.store import Store, connect

# A private redis-server per test session on a free port; never the machine's shared 6379.
redis_proc = factories.redis_proc(executable=shutil.which("redis-server") or "/usr/bin/redis-server",
                                  port=None, host="127.0.0.1")


@pytest.fixture
def redis_url(redis_proc) -> str:  # type: ignore[no-untyped-def]
    return f"redis://{redis_proc.host}:{redis_proc.port}/0"


async def _flush(r: aioredis.Redis) -> None:
    await r.flushdb()


@pytest.fixture(params=["redis", "embedded"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """The store suite runs on both: a real redis-server and the embedded fakeredis."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        client = connect(url)
        await _flush(client)
    else:
        client = connect(None)
    yield client
    await _flush(client)
    await client.aclose()


class FakeClock:
    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(redis_client: aioredis.Redis, clock: FakeClock) -> Store:
    return Store(redis_client, clock)
