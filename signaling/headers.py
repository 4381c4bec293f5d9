"""Headers on every response (errors, 404s and static files included, via `on_response_prepare`).

Security headers, a CSP whose `connect-src` names only this deployment's origins, `Cache-Control: no-store`
on the API (most of it carries personal data) and HSTS when the request came over TLS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from .appkeys import CONFIG
from .placement import NODE

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(connect_origins: Iterable[str]) -> str:
    """connect-src: this origin and the configured ones (other nodes' signaling, the public URL) only."""
    connect = ["'self'"]
    for origin in connect_origins:
        origin = origin.rstrip("/")
        ws = origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        connect += [o for o in (origin, ws) if o not in connect]
    return ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            f"connect-src {' '.join(connect)}; style-src 'self'; script-src 'self'; worker-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


NODES_TTL_S = 5.0  # how long the list of live nodes in connect-src is reused


@dataclass
class _NodeOrigins:
    """The deployment's live nodes (their signal URLs are where a page may connect), read at most every
    NODES_TTL_S: one Redis read per process, not one per response."""

    at: float = -NODES_TTL_S
    origins: list[str] = field(default_factory=list)


NODE_ORIGINS = web.AppKey("csp_node_origins", _NodeOrigins)


def setup_security_headers(app: web.Application) -> None:
    app[NODE_ORIGINS] = _NodeOrigins()
    app.on_response_prepare.append(add_security_headers)


async def _nodes(app: web.Application) -> list[str]:
    cache, node = app.get(NODE_ORIGINS), app.get(NODE)
    if cache is None or node is None:
        return []
    own = [node.address]  # known without Redis, before the first heartbeat too
    now = time.monotonic()
    if now - cache.at > NODES_TTL_S:
        cache.at = now
        try:
            cache.origins = [n.address for n in await node.registry.live()]
        except Exception:  # Redis away: keep the last list (the page's own origin is always allowed)
            log.warning("could not read the live nodes for the CSP")
    return own + cache.origins


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers everywhere; `no-store` on every API response (most carry personal data); HSTS when
    the request came over TLS (directly, or from a trusted proxy that says so)."""
    config = request.app[CONFIG]
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = content_security_policy(
            [*([config.public_url] if config.public_url else []), *config.allowed_origins,
             *([config.node_url] if config.node_url else []), *await _nodes(request.app)])
    if request.path.startswith(("/api/", "/socket.io")) or request.path == "/metrics":  # chat polling too
        response.headers["Cache-Control"] = "no-store"
    if _over_tls(request, config.trusted_proxies):
        response.headers.setdefault("Strict-Transport-Security", HSTS)


def _over_tls(request: web.Request, trusted_proxies: list[str]) -> bool:
    # on_response_prepare sees the request as it arrived, before the `forwarded` middleware's clone
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.remote in trusted_proxies and proto == "https"
