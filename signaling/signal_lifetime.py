"""A signaling session's lifetime: one socket per participant (a newer one replaces the older, as a phone moving
from Wi-Fi to 4G), a fresh session token while it is open, its liveness (signaling/liveness.py), and after it
drops a grace period in which the participant keeps its place and shows as "reconnecting"."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode

from .appkeys import AUTH, CONFIG
from .auth import SESSION_REFRESH_S
from .liveness import Liveness
from .signal_keys import PENDING_REMOVALS, SFU, SIGNAL_SESSIONS
from .signal_protocol import CLOSE_REPLACED

if TYPE_CHECKING:
    from .signal_session import SignalSession

Sessions = dict[tuple[str, str, str], "SignalSession"]


class Lifetime:
    def __init__(self, session: SignalSession) -> None:
        self._s = session
        self.liveness = Liveness(session.ws, session.app[CONFIG].signal_drop_grace_s, on_silent=self._silent,
                                 on_heard=self._heard_again, on_gone=self._gone,
                                 heard_elsewhere=self._overrun_reported)
        self._pinger: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def register(self) -> None:
        """This socket now speaks for the participant; an older one of theirs is closed as replaced."""
        s = self._s
        sessions: Sessions = s.app[SIGNAL_SESSIONS]
        old = sessions.get(s.key)
        sessions[s.key] = s
        if old is not None and old is not s:
            asyncio.get_running_loop().create_task(old.lifetime.replaced())

    async def replaced(self) -> None:
        await self._s.error("replaced", "Du koblet til fra et annet sted; denne tilkoblingen er lukket.")
        await self._s.ws.close(code=CLOSE_REPLACED, message=b"replaced")

    def start_refreshing(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_session(), name=f"signal-session-{self._s.cid}")

    async def _refresh_session(self) -> None:
        """Session tokens are short-lived: hand out a fresh one while the socket is open, so a reconnect or
        the chat can still use it; once revoked (ended, denied) `identity.verify` refuses it anyway."""
        s = self._s
        assert s.principal and s.participant_id
        while not s.ws.closed:
            await asyncio.sleep(SESSION_REFRESH_S)
            token = s.app[AUTH].issue_session_token(s.principal, s.cid, s.participant_id)
            await s.send({"type": "session_token", "session_token": token})

    # --- liveness ---------------------------------------------------------------------------------

    def start_liveness(self) -> None:
        self.liveness.heard()
        self._pinger = asyncio.create_task(self.liveness.run(), name=f"signal-liveness-{self._s.cid}")

    def _overrun_reported(self) -> float | None:
        """When the client's media reports last said the server overruns its link (see liveness.py)."""
        peer = self._s.peer
        return None if peer is None else peer.bandwidth.overrun_reported_at

    def _current(self) -> bool:
        """Whether this socket still speaks for the participant (not replaced by a newer one)."""
        s = self._s
        return s.participant_id is not None and s.app[SIGNAL_SESSIONS].get(s.key) is s

    async def _silent(self) -> None:  # no frame for a while: the others see "reconnecting"
        s = self._s
        if s.peer is not None and self._current():
            await s.app[SFU].room(s.cid).dropped(s.key[2], s.app[CONFIG].signal_drop_grace_s)

    async def _heard_again(self) -> None:  # a short blip: "connected" again, same peer connection
        s = self._s
        if s.peer is not None and self._current():
            await s.app[SFU].room(s.cid).present(s.key[2])

    async def _gone(self) -> None:
        """Silent for the whole grace period: the participant leaves the room now (closing a dead socket
        would wait for a close frame that never comes)."""
        s = self._s
        if self._current():
            del s.app[SIGNAL_SESSIONS][s.key]
            await s.app[SFU].room(s.cid).leave(s.key[2])
        await s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"silent")

    # --- teardown ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """The socket closed: no more pings or session tokens."""
        if self._refresher is not None:
            self._refresher.cancel()
        if self._pinger is not None:
            self._pinger.cancel()

    async def end(self) -> None:
        """After `stop`: leave the room now (left, ended), or after the grace period unless it came back."""
        s = self._s
        if s.participant_id is None or s.principal is None:
            return
        sessions: Sessions = s.app[SIGNAL_SESSIONS]
        if sessions.get(s.key) is not s:
            return  # replaced by a newer connection, which now owns the peer
        if s.left or s.ended:
            del sessions[s.key]
            await s.app[SFU].room(s.cid).leave(s.participant_id)
            return
        # Dropped: keep the place for a grace period, then remove the participant unless it came back.
        # A client already silent (liveness) keeps the countdown it has.
        key, pid, grace = s.key, s.participant_id, self.liveness.grace_left()
        if s.peer is not None and self.liveness.silent_since is None:  # the others see "reconnecting"
            with contextlib.suppress(Exception):
                await s.app[SFU].room(s.cid).dropped(pid, grace)

        async def remove_later() -> None:
            await asyncio.sleep(grace)
            if sessions.get(key) is s:
                del sessions[key]
                await s.app[SFU].room(s.cid).leave(pid)

        pending: set[asyncio.Task[None]] = s.app[PENDING_REMOVALS]
        task = asyncio.get_running_loop().create_task(remove_later())
        pending.add(task)
        task.add_done_callback(pending.discard)
