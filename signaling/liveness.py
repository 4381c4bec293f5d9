"""Whether a participant's signaling socket is alive (docs/protocol.md, "Liveness").

A closed tab closes its socket and the server hears it at once; a phone in a tunnel, or a browser whose
network went away, says nothing, and TCP would keep the dead connection open for minutes. So the server
sends a WebSocket ping frame (RFC 6455) every `PING_INTERVAL_S`; the browser's network stack answers it
itself (no JavaScript, also in a frozen background tab). Any frame from the client counts as heard.

- Silent for `SILENT_AFTER_S`: `on_silent` (the others see "reconnecting" with the grace countdown). TCP does
  not lose a pong, a 4G link only delays one, so one late pong means "reconnecting" for a moment, never "left".
- Heard again before the grace period is over: `on_heard` ("connected" again, the same peer connection).
- Silent for the whole grace period after that: `on_gone` (the participant is removed: "left").

Time the server was not listening does not count as silence: while the session handles a message
(`with liveness.busy():`, frames wait in the socket meanwhile) nothing is judged, and a tick that comes late
because the event loop was busy moves the last-heard time on by the delay.
Cost on the client's link: a ping of 2 bytes and a pong of 6 bytes per second, about 110 bytes/s each way
with TCP/IP headers (~1 kbit/s per direction), next to 30-1500 kbit/s of media.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

PING_INTERVAL_S = 1.0
SILENT_AFTER_S = 2.0  # two pings unanswered: shown within 3 s of a drop (issue 13), a slow pong tolerated
TICK_S = 0.25

Hook = Callable[[], Awaitable[None]]


class Liveness:
    """Pings one signaling socket and tells its session when the client falls silent or is heard again."""

    def __init__(self, ws: web.WebSocketResponse, grace_s: float, *, on_silent: Hook, on_heard: Hook,
                 on_gone: Hook, clock: Callable[[], float] = time.monotonic) -> None:
        self._ws = ws
        self._grace_s = grace_s
        self._on_silent, self._on_heard, self._on_gone = on_silent, on_heard, on_gone
        self._clock = clock
        self._heard_at = clock()
        self.silent_since: float | None = None
        self._busy = 0

    def heard(self) -> None:
        """A frame came from the client (or the session is listening again after a long handler)."""
        self._heard_at = self._clock()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """The session is handling a message, not reading: the client cannot be heard meanwhile."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self.heard()

    def grace_left(self) -> float:
        """What is left of the grace period if the client is already silent (the socket closing later
        must not start the countdown again), else the whole grace period."""
        if self.silent_since is None:
            return self._grace_s
        return max(0.0, self._grace_s - (self._clock() - self.silent_since))

    async def run(self) -> None:
        next_ping = last_tick = self._clock()
        while not self._ws.closed:
            now = self._clock()
            late = now - last_tick - TICK_S
            if late > TICK_S:  # the event loop was busy: the client's frames may be waiting unread
                self._heard_at = min(now, self._heard_at + late)
            last_tick = now
            if now >= next_ping:
                next_ping = now + PING_INTERVAL_S
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._ws.ping()
            silent = now - self._heard_at >= SILENT_AFTER_S
            if self._busy:
                pass
            elif silent and self.silent_since is None:
                self.silent_since = now
                await self._on_silent()
            elif not silent and self.silent_since is not None:
                self.silent_since = None
                await self._on_heard()
            elif silent and self.silent_since is not None and now - self.silent_since >= self._grace_s:
                await self._on_gone()
                return
            await asyncio.sleep(TICK_S)
