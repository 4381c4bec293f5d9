"""Background rounds of the application (queue and no-show sweeps, chat retention, audit sealing): one loop.

A round that fails (Redis briefly away) is logged and tried again at the next interval. The loop is stopped
with an event, not cancel(): a cancel landing inside a Redis call can be swallowed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def periodic(name: str, interval_s: float, round_: Callable[[], Awaitable[object]], *,
                   at_start: bool = True) -> AsyncIterator[None]:
    """Run `round_` every `interval_s` seconds (the first one at once when `at_start`) while the block runs."""
    stop = asyncio.Event()

    async def loop() -> None:
        if not at_start:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
        while not stop.is_set():
            try:
                await round_()
            except Exception as exc:  # Redis briefly away: next round
                log.warning("%s failed: %s", name, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
