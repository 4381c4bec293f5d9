"""The composition root: builds the aiohttp application from a Config.

Redis, the HTTP client for JWKS, the store and background sweeps are opened in `cleanup_ctx` and
closed on shutdown; handlers get them through typed app keys. Nothing here runs at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from media import MediaConfig, Sfu
from rooms.crypto import FieldCipher
from rooms.events import EventHub
from rooms.store import Store

from . import static_files
from .api import bookings, build_api
from .api.shortcodes import short_address
from .appkeys import AUTH, CONFIG, HTTP, HUB, STORE
from .audit_wiring import setup_audit
from .auth import Authenticator
from .chat_wiring import setup_chat
from .config import Config
from .headers import setup_security_headers
from .http import error_middleware
from .messages import localize_errors
from .metrics import METRICS, Metrics
from .openapi import build_openapi
from .periodic import periodic
from .placement import setup_placement
from .signal_ws import SIGNAL_OPENAPI, SIGNAL_SESSIONS, setup_signaling
from .store_health import register_store_metrics, replicated

log = logging.getLogger(__name__)
_SOURCE_CLIENT = Path(__file__).resolve().parent.parent / "web_client"  # a checkout (editable install, make run)
_PACKAGED_CLIENT = Path(__file__).resolve().parent / "web"  # a wheel: the build's copy inside the package
WEB_CLIENT_DIR = _SOURCE_CLIENT if (_SOURCE_CLIENT / "index.html").is_file() else _PACKAGED_CLIENT
SWEEP_INTERVAL_S = 5.0
OPENAPI = web.AppKey("openapi", dict)

STATIC_DIRS = ("css", "js", "vendor")  # the built client under /static/: not its tests, package.json or README


@web.middleware
async def observe(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    metrics = request.app[METRICS]
    metrics.http_requests.labels(request.method, str(response.status)).inc()
    metrics.request_seconds.observe(time.perf_counter() - started)
    body = response.body if isinstance(response, web.Response) else None
    if response.status >= 400 and isinstance(body, bytes | bytearray) and body:  # not a streamed Payload
        with contextlib.suppress(ValueError, TypeError):
            metrics.http_errors.labels(json.loads(body)["error"]).inc()
    return response


@web.middleware
async def forwarded(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Behind a TLS reverse proxy: believe X-Forwarded-Proto/Host/For only from configured proxies."""
    if request.remote and request.remote in request.app[CONFIG].trusted_proxies:
        changes: dict[str, Any] = {}  # clone()'s keywords differ in type; these are all str
        if proto := request.headers.get("X-Forwarded-Proto"):
            changes["scheme"] = proto.split(",")[0].strip()
        if host := request.headers.get("X-Forwarded-Host"):
            changes["host"] = host.split(",")[0].strip()
        if client := request.headers.get("X-Forwarded-For"):
            changes["remote"] = client.split(",")[0].strip()
        if changes:
            request = request.clone(**changes)
    return await handler(request)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # Names, reasons and phone numbers are sealed at rest under the master key (rooms/crypto.py).
    store = Store.open(config.redis_settings(), cipher=FieldCipher(config.chat_key_bytes()))
    session = aiohttp.ClientSession()
    app[STORE] = store
    app[HTTP] = session
    app[AUTH] = Authenticator(config, session)
    hub = app[HUB] = EventHub(store.redis)
    unfollow = store.service_settings.follow(hub, config.tenants)  # a changed setting drops every process's copy
    await hub.start()
    yield
    unfollow()
    await hub.stop()
    await session.close()
    await store.close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Drops tickets whose owner stayed away longer than the grace period (on every node; idempotent)."""
    async def sweep() -> None:
        config, store = app[CONFIG], app[STORE]
        for tenant in config.tenants:
            try:
                # ticket.abandoned and the queue event come from the script that drops each ticket
                dropped = await store.rooms.abandon_expired(tenant.id, config.queue_grace_s)
            except Exception:  # Redis briefly away: try again next round
                log.warning("queue sweep failed for a tenant", exc_info=True)
                continue
            app[METRICS].tickets_abandoned.labels(tenant.id).inc(len(dropped))

    async with periodic("queue-sweeper", SWEEP_INTERVAL_S, sweep, at_start=False):
        yield


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while a Redis primary answers: 503 during a failover, 200 again once Sentinel names the new one."""
    if await request.app[STORE].ping():
        return web.json_response({"status": "ready"})
    return web.json_response({"error": "redis_unavailable", "message": "Redis svarer ikke.", "retry_after_s": 1},
                             status=503, headers={"Retry-After": "1"})


async def metrics(request: web.Request) -> web.Response:
    m, store, config = request.app[METRICS], request.app[STORE], request.app[CONFIG]
    m.signal_sessions.set(len(request.app[SIGNAL_SESSIONS]))
    now = time.time()
    try:
        async with asyncio.timeout(2):  # Redis away (a failover): the store counters below matter most then
            for tenant in config.tenants:
                for s in tenant.services:
                    m.queue_length.labels(tenant.id, s.id).set(await store.queue.length(tenant.id, s.id))
                    oldest = await store.queue.waiting(tenant.id, s.id, limit=1)
                    wait = now - oldest[0].enqueued_at if oldest else 0.0
                    m.oldest_wait.labels(tenant.id, s.id).set(wait)
    except (RedisError, OSError, TimeoutError):
        log.warning("metrics: queue gauges not refreshed (store unavailable)")
    return m.render()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


# index.html and the service worker, read once like the rest of the client (signaling/static_files.py)
_INDEX = static_files.read(WEB_CLIENT_DIR / "index.html")
_SERVICE_WORKER = static_files.read(WEB_CLIENT_DIR / "sw.js")


async def index(_request: web.Request) -> web.StreamResponse:
    page = _INDEX
    if page is None:
        return web.Response(text="nettlege: the web client is not built", content_type="text/plain")
    return static_files.response(page)


async def service_worker(_request: web.Request) -> web.StreamResponse:
    """The notifications-only service worker, served at the root so its scope is the whole client."""
    script = _SERVICE_WORKER
    if script is None:
        raise web.HTTPNotFound()
    # no-cache: a fixed worker reaches phones on their next visit, not after a cached copy expires
    return static_files.response(script, headers={"Cache-Control": "no-cache"})


def build_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.limits.max_body_bytes,
                          middlewares=[forwarded, observe, localize_errors, error_middleware, replicated])
    app[CONFIG] = config
    app[METRICS] = Metrics()
    register_store_metrics(app)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_sweeper)
    app.cleanup_ctx.append(bookings.no_show_sweeper)
    app.cleanup_ctx.append(bookings.webhook_sender)
    setup_audit(app)  # seals the audit trail and verifies it on a schedule
    listen_ips = None if config.media.listen_ips is None else tuple(config.media.listen_ips)
    setup_signaling(app, Sfu(MediaConfig.for_host(config.host, listen_ips, announced_ip=config.media.announced_ip)))
    setup_placement(app, load=lambda: float(len(app.get(SIGNAL_SESSIONS, {}))))
    api = build_api()
    api.add_to(app)
    app[OPENAPI] = build_openapi(api, extra_paths=SIGNAL_OPENAPI)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/k", short_address)  # the short address a caller types for a six-digit code
    app.router.add_get("/sw.js", service_worker)  # turn notifications on Android need a service worker
    static_files.add_static(app, WEB_CLIENT_DIR, STATIC_DIRS)
    setup_security_headers(app)  # every response, 404s and static files included
    setup_chat(app)
    return app
