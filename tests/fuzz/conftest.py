"""The fuzz suite's harness: the whole app served on a loopback port from its own event loop thread, a
second loop thread for the clients, and a watch on the logs for unhandled errors.

Hypothesis drives plain (synchronous) test functions; each example hands a coroutine to the client loop
and waits for it, so a connection (signaling socket, Socket.IO client) lives across examples.

Budget: every test reads its example count from `examples(n)`: `n` in `make test`, multiplied by
NETTLEGE_FUZZ_SCALE for a longer run (the README has the command).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from rooms.store import connect
from signaling.app import build_app

T = TypeVar("T")
ORIGIN = "http://fuzz.nettlege.test"
SCALE = float(os.environ.get("NETTLEGE_FUZZ_SCALE", "1"))


def examples(n: int) -> settings:
    """Bounded, deterministic settings (no deadline: a loaded CI machine is slow, not wrong)."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large], database=None)


class Loop:
    """An event loop on its own thread; `run` waits for a coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Crashes(logging.Handler):
    """Every ERROR a handler logs (an unhandled exception becomes `internal` / 500 and is logged here)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> str:
        return "\n".join(f"{r.name}: {r.getMessage()}\n{self.format(r) if r.exc_info else ''}" for r in self.records)


class Live:
    def __init__(self, app: web.Application) -> None:
        self.server = Loop("fuzz-server")
        self.client = Loop("fuzz-clients")
        self.app = app
        self.runner = web.AppRunner(app)
        self.port = self.server.run(self._start())
        self.base = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return int(self.runner.addresses[0][1])

    def close(self) -> None:
        self.server.run(self.runner.cleanup(), timeout=30)
        self.client.close()
        self.server.close()


@pytest.fixture
def live(make_config, redis_url) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    async def flush() -> None:
        r = connect(redis_url)
        await r.flushdb()
        await r.aclose()

    asyncio.run(flush())
    # Generous write limits: the fuzzer is one subject making thousands of writes, which is not what it tests.
    config = make_config(allowed_origins=[ORIGIN], limits={"writes_per_minute": 1_000_000})
    crashes = Crashes()
    logging.getLogger().addHandler(crashes)
    server = Live(build_app(config))
    server.crashes = crashes  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.close()
        logging.getLogger().removeHandler(crashes)
