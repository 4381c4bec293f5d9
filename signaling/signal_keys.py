"""The signaling socket's application state (aiohttp AppKeys), set up by signal_ws.setup_signaling."""

from __future__ import annotations

from aiohttp import web

from media import Sfu

SFU = web.AppKey("sfu", Sfu)
SIGNAL_SESSIONS = web.AppKey("signal_sessions", dict)  # (tenant, consultation, participant) -> its SignalSession
PENDING_REMOVALS = web.AppKey("signal_pending_removals", set)  # dropped participants waiting out the grace
