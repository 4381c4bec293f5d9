"""The signaling WebSocket: `GET /api/v1/consultations/{id}/signal` (protocol in docs/protocol.md).

A thin adapter between the browser and the SFU: it authenticates `hello`, keeps people who were not
pre-authorised in the lobby until a clinician admits them, and passes offers, answers and candidates
to the participant's `media.Peer`. One connection per participant: a new one replaces the old (a
phone moving from Wi-Fi to 4G); a dropped one is removed from the room after a grace period unless
it comes back.

This module is the route and its setup; a session is signal_session.py, with its concerns beside it:
signal_admission.py, signal_media.py, signal_lifetime.py, and the wire rules in signal_protocol.py.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSCloseCode, web

from media import Sfu
from media import metrics as media_metrics

from .appkeys import CONFIG
from .http import error_response
from .metrics import METRICS
from .signal_admission import ice_servers_for
from .signal_keys import PENDING_REMOVALS, SFU, SIGNAL_SESSIONS
from .signal_protocol import MAX_FRAME_BYTES
from .signal_session import SignalSession

__all__ = ["SFU", "SIGNAL_OPENAPI", "SIGNAL_SESSIONS", "SignalSession", "ice_servers_for", "setup_signaling"]

log = logging.getLogger(__name__)


def origin_allowed(request: web.Request) -> bool:
    """The Origin header is required (as on the chat socket): a configured origin, or outside production
    the page's own origin (scheme and host of this very request; a browser cannot forge either)."""
    config = request.app[CONFIG]
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin:
        return False
    if origin in config.origins():
        return True
    return not config.production and origin == f"{request.scheme}://{request.host}"


async def signal(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        return error_response(403, "origin_not_allowed", "Tilkobling fra denne nettsiden er ikke tillatt.")
    # No aiohttp heartbeat: signaling/liveness.py pings every second and watches the pongs (autoping off).
    ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    session = SignalSession(request.app, ws, request.match_info["consultation_id"])
    try:
        await session.run()
    except Exception:
        log.exception("signaling session failed")
        await session.error("internal", "Noe gikk galt hos oss.")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    finally:
        await session.cleanup()
    return ws


async def _sfu_ctx(app: web.Application) -> Any:
    app[SIGNAL_SESSIONS] = {}
    app[PENDING_REMOVALS] = set()
    sfu = app[SFU]
    yield
    for task in app[PENDING_REMOVALS]:
        task.cancel()
    for session in list(app[SIGNAL_SESSIONS].values()):
        await session.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
    await sfu.close()


SIGNAL_OPENAPI = {"/api/v1/consultations/{consultation_id}/signal": {"get": {
    "summary": "Signaling WebSocket (JSON messages; see docs/protocol.md)", "operationId": "signal",
    "tags": ["media"],
    "parameters": [{"name": "consultation_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {"101": {"description": "Switching to the WebSocket protocol"},
                  "403": {"description": "Origin not allowed",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
}}}


def setup_signaling(app: web.Application, sfu: Sfu) -> None:
    # aioice logs candidate addresses (client IPs) at INFO: keep personal data out of the logs.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    app[SFU] = sfu
    media_metrics.register(sfu, app[METRICS].registry)
    app.router.add_get("/api/v1/consultations/{consultation_id}/signal", signal)
    app.cleanup_ctx.append(_sfu_ctx)
