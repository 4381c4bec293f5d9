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
(`with liveness.busy():`, frames wait in the socket meanwhile) nothing is judged, and a wake-up that comes late
because the event loop was busy moves the last-heard time on by the delay.
Cost on the client's link: two pings (2 bytes) and two pongs (6 bytes) a second; with TCP/IP headers and the
server's ACKs about 210 bytes/s down and 120 bytes/s up (~2.6 kbit/s in all), next to 30-1500 kbit/s of media.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

PING_INTERVAL_S = 0.5
# Three pings unanswered: a drop shows 1.0-1.75 s after it (issue 13 asks for 3 s, the rest is for the others'
# screens), and a pong up to 1 s late on a slow 4G link or a busy machine is no silence.
SILENT_AFTER_S = 1.5
LATE_S = 0.25  # a wake-up this late means the event loop was busy, not the client silent

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
        next_ping = wake = self._clock()
        while not self._ws.closed:
            now = self._clock()
            late = now - wake
            if late > LATE_S:  # the event loop was busy: the client's frames may be waiting unread
                self._heard_at = min(now, self._heard_at + late)
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
            # Wake for the next ping, or when the silence (or the grace period) would run out.
            if self._busy:
                due = next_ping
            elif self.silent_since is None:
                due = min(next_ping, self._heard_at + SILENT_AFTER_S)
            else:
                due = min(next_ping, self.silent_since + self._grace_s)
            now = self._clock()
            wake = max(due, now + 0.01)
            await asyncio.sleep(wake - now)
