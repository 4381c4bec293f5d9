"""Rate-limited keyframe requests (PLI) towards one publisher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class KeyframeRequester:
    """Coalesces keyframe requests: at most one PLI per `min_interval_s`; a request inside the interval is
    sent when the interval ends, so a late joiner never waits for the publisher's next natural keyframe."""

    def __init__(self, send_pli: Callable[[], Awaitable[bool]], min_interval_s: float) -> None:
        self._send_pli = send_pli
        self._min_interval_s = min_interval_s
        self._last: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0

    def request(self) -> None:
        if self._closed or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = 0.0 if self._last is None else self._last + self._min_interval_s - now
        if wait <= 0:
            self._fire()
        else:
            self._timer = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._last = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        try:
            if await self._send_pli():
                self.sent += 1
        except ConnectionError:
            pass
        except Exception:  # a failed PLI must never take the room down; the next request retries
            log.exception("keyframe request failed")

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
