"""Whether a participant's signaling socket is alive (docs/protocol.md, "Liveness").

A closed tab closes its socket and the server hears it at once; a phone in a tunnel, or a browser whose
network went away, says nothing, and TCP would keep the dead connection open for minutes. So the server
sends a WebSocket ping frame (RFC 6455) every `PING_INTERVAL_S`; the browser's network stack answers it
itself (no JavaScript, also in a frozen background tab). Any frame from the client counts as heard.

- A ping unanswered for `PONG_TIMEOUT_S` (nothing at all heard since it went out): `on_silent` (the others see
  "reconnecting" with the grace countdown). TCP does not lose a pong, a 4G link only delays one, so a late
  pong means "reconnecting" for a moment, never "left".
- Heard again before the grace period is over: `on_heard` ("connected" again, the same peer connection).
- Silent for the whole grace period after that: `on_gone` (the participant is removed: "left").

The server can flood the client's downlink itself (video to a subscriber whose link cannot carry it, until the
bandwidth policy pauses it): its pings then wait in the same overflowing queue and its TCP retransmissions back
off, so a live client answers late. `heard_elsewhere` tells when the client's media reports last said exactly
that (media.bandwidth's `overrun_reported_at`: an RTCP report, sent on the client's uplink, showing its link
overrun by what it is sent); such a report after a ping counts as hearing the client. A client that is gone
sends no reports, so its silence is judged as before; one whose link is fine is judged by its pongs alone.

Only pings that went out are judged, so a server too busy to ping is never mistaken for a silent client; and
while the session handles a message (`with liveness.busy():`, frames wait in the socket meanwhile) nothing is.
Cost on the client's link: two pings (2 bytes) and two pongs (6 bytes) a second; with TCP/IP headers and the
server's ACKs about 210 bytes/s down and 120 bytes/s up (~2.6 kbit/s in all), next to 30-1500 kbit/s of media.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

PING_INTERVAL_S = 0.5
# A drop shows 1.0-1.5 s after it (issue 13 asks for 3 s; the rest is for the others' screens), and a pong up
# to 1 s late (a slow 4G link, a busy phone) is no silence.
PONG_TIMEOUT_S = 1.0

Hook = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)


class Liveness:
    """Pings one signaling socket and tells its session when the client falls silent or is heard again."""

    def __init__(self, ws: web.WebSocketResponse, grace_s: float, *, on_silent: Hook, on_heard: Hook,
                 on_gone: Hook, clock: Callable[[], float] = time.monotonic,
                 heard_elsewhere: Callable[[], float | None] | None = None) -> None:
        self._ws = ws
        self._heard_elsewhere = heard_elsewhere
        self._grace_s = grace_s
        self._on_silent, self._on_heard, self._on_gone = on_silent, on_heard, on_gone
        self._clock = clock
        self._unanswered_since: float | None = None  # when the first ping not followed by any frame went out
        self.silent_since: float | None = None
        self._busy = 0

    def heard(self) -> None:
        """A frame came from the client (or the session is listening again after a long handler)."""
        self._unanswered_since = None

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
        next_ping = self._clock()
        while not self._ws.closed:
            now = self._clock()
            if now >= next_ping:
                next_ping = now + PING_INTERVAL_S
                if self._unanswered_since is None:
                    self._unanswered_since = now
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._ws.ping()
            unanswered = self._unanswered_since
            if unanswered is not None and self._heard_elsewhere is not None:
                reported_at = self._heard_elsewhere()
                if reported_at is not None and reported_at >= unanswered:
                    if now - unanswered >= PONG_TIMEOUT_S:
                        log.debug("no pong for %.2f s, but its media reports say its link is overrun",
                                  now - unanswered)
                    self._unanswered_since = unanswered = None  # its media reports came after the ping
            silent = unanswered is not None and now - unanswered >= PONG_TIMEOUT_S
            if self._busy:
                pass
            elif silent and self.silent_since is None:
                log.debug("silent: no frame for %.2f s after a ping", now - (unanswered or now))
                self.silent_since = now
                await self._on_silent()
            elif not silent and self.silent_since is not None:
                log.debug("heard again after %.2f s of silence", now - self.silent_since)
                self.silent_since = None
                await self._on_heard()
            elif silent and self.silent_since is not None and now - self.silent_since >= self._grace_s:
                log.debug("gone: silent for the grace period (%.2f s)", self._grace_s)
                await self._on_gone()
                return
            # Wake for the next ping, or when the unanswered ping (or the grace period) runs out.
            due = next_ping
            if not self._busy and self.silent_since is not None:
                due = min(due, self.silent_since + self._grace_s)
            elif not self._busy and unanswered is not None:
                due = min(due, unanswered + PONG_TIMEOUT_S)
            now = self._clock()
            await asyncio.sleep(max(due - now, 0.01))
