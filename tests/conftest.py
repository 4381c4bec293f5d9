"""Fixtures for real components: a private redis-server (pytest-redis), the embedded store, the app."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pytest_redis import factories

from rooms.store import Store, connect

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With CI=true nothing may skip: a missing Chromium, coturn, redis-server, npm build or namespace support
    is a failure there. Outside CI a skip stays a skip and the summary lists it (`-rs`)."""
    outcome = yield
    report = outcome.get_result()
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped with CI=true, where nothing may skip: {reason}"


# A private redis-server per test session on a free port; never the machine's shared 6379.
redis_proc = factories.redis_proc(executable=shutil.which("redis-server") or "/usr/bin/redis-server",
                                  port=None, host="127.0.0.1")


@pytest.fixture
def redis_url(redis_proc) -> str:  # type: ignore[no-untyped-def]
    # tests/ha/test_cluster.py runs the store and chat suites again with this set to a Redis Cluster
    # (redis+cluster://...): everything built from `redis_url` then runs on the cluster.
    return os.environ.get("NETTLEGE_TEST_REDIS_URL") or f"redis://{redis_proc.host}:{redis_proc.port}/0"


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


def hold_rate_windows(app: web.Application) -> FakeClock:
    """Stops the clock of the app's fixed-window rate limits (REST, knocks, short codes, chat) at now. A window
    that turned during a limit test would let up to twice the limit through, so such a test counts inside one
    window; it may `advance` the returned clock to open the next."""
    from chat.messages import MessageStore
    from rooms.ratelimit import RateLimiter
    from signaling.appkeys import STORE
    from signaling.chat_wiring import CHAT

    held = FakeClock(time.time())
    store = app[STORE]
    store.rate = RateLimiter(store.redis, held)
    chat = app.get(CHAT)
    if chat is not None:
        chat.messages = MessageStore(store.redis, chat.keys, chat.limits, held)
    return held


@pytest.fixture
async def store(redis_client: aioredis.Redis, clock: FakeClock) -> Store:
    return Store(redis_client, clock)


# --- the application -------------------------------------------------------------------------------

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from signaling.app import build_app  # noqa: E402
from signaling.config import Config, load_config  # noqa: E402

TEST_TENANTS = """
[[tenants]]
id = "oslo"
name = "Oslo kommune"
[[tenants.services]]
id = "nettlege"
name = "Kommunal nettlege"
opening_hours = { default = "24/7" }
[[tenants.services]]
id = "legevakt"
name = "Legevakt"
opening_hours = { default = "24/7" }
[[tenants.services]]
id = "stengt"
name = "Alltid stengt"
opening_hours = { default = "closed" }

[[tenants]]
id = "bergen"
name = "Bergen kommune"
[[tenants.services]]
id = "nettlege"
name = "Kommunal nettlege"
opening_hours = { default = "24/7" }
"""


@pytest.fixture
def config_file(tmp_path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "nettlege.toml"
    path.write_text(TEST_TENANTS)
    return str(path)


@pytest.fixture
def make_config(config_file: str, redis_url: str):  # type: ignore[no-untyped-def]
    """Config for the test tenants on the private real Redis; keyword overrides win."""
    def make(**overrides: object) -> Config:
        env = {"REDIS_URL": redis_url, "NETTLEGE_ENV": "test",
               "NETTLEGE_SECRET_KEY": "test-secret-key-with-enough-length-0123456789"}
        return load_config(config_file, environ=env, **overrides)
    return make


@pytest.fixture
async def app_client(make_config, redis_url) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    """The whole app on a loopback port, on the private real Redis (flushed first)."""
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    client = TestClient(TestServer(build_app(make_config()), host="127.0.0.1"))
    await client.start_server()
    yield client
    await close_app(client)


async def close_app(client: TestClient, timeout_s: float = 15.0) -> None:
    """Close a test app; if its shutdown hangs, fail with the stacks of the tasks still running."""
    import asyncio
    import io

    try:
        await asyncio.wait_for(client.close(), timeout_s)
    except TimeoutError:
        out = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(limit=6, file=out)
        pytest.fail(f"app shutdown hung for {timeout_s}s; tasks:\n{out.getvalue()}")


async def dev_token(client: TestClient, sub: str, role: str, tenant: str = "oslo", name: str | None = None) -> str:
    resp = await client.post("/api/v1/dev/token", json={"sub": sub, "role": role, "tenant": tenant,
                                                        "name": name or f"Navn {sub}"})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
