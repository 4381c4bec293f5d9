"""Attaches the chat (chat/: Socket.IO server, encrypted message store) to the aiohttp app.

chat/ does not import signaling: this module hands it what it needs -- the store, an `identify` that
accepts every credential the REST API and signaling accept (dev/OIDC/session JWTs, invites), the allowed
origins, the Redis URL for python-socketio's AsyncRedisManager, the chat master key -- and runs the
retention sweep: it shreds the data keys of consultations that ended more than `retention_days` ago and
deletes those consultations with their participants and indexes (rooms/retention.py, README "Privacy").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from chat import metrics as chat_metrics
from chat.errors import ChatError
from chat.limits import ChatLimits
from chat.server import Authenticated, ChatServer
from chat.store import ChatStore
from rooms.audit import Action
from rooms.errors import DomainError
from rooms.retention import RetentionSweeper

from .appkeys import CONFIG, HUB, STORE
from .auth import AuthError
from .identity import identify
from .metrics import METRICS
from .periodic import periodic
from .sio_manager import chat_manager

log = logging.getLogger(__name__)

CHAT = web.AppKey("chat", ChatStore)
SHRED_INTERVAL_S = 600.0
CHAT_PING_INTERVAL_S = 10.0
CHAT_PING_TIMEOUT_S = 10.0


def setup_chat(app: web.Application, limits: ChatLimits | None = None) -> None:
    config = app[CONFIG]

    async def identify_for_chat(token: str, display_name: str) -> Authenticated:
        try:
            who = await identify(app, token, display_name)
        except AuthError as e:
            raise ChatError(e.code, e.message) from None
        except DomainError as e:  # a spent, expired or unknown invite
            raise ChatError(e.code, e.message) from None
        return Authenticated(who.principal, who.session_token)

    def median_consultation_s(tenant_id: str, service_id: str) -> int:
        tenant = config.tenant(tenant_id)
        service = tenant.service(service_id) if tenant else None
        return service.median_consultation_s if service else 600

    server = ChatServer(identify_for_chat, origins=config.origins(), redis_url=config.redis_url,
                        client_manager=chat_manager(config.redis_settings()),
                        median_consultation_s=median_consultation_s, limits=limits)
    # Engine.IO pings every 10 s and drops a socket whose pong is 10 s late: a citizen whose network went
    # silent is offline for the queue after at most 20 s (python-socketio's defaults, 25 + 20 s, said 45 s);
    # a late pong on 4G is tolerated, and the queue's grace period keeps the place. ~17 bytes/s per socket.
    # Set on the Engine.IO server (public attributes it reads at every ping) because ChatServer builds it.
    server.sio.eio.ping_interval, server.sio.eio.ping_timeout = CHAT_PING_INTERVAL_S, CHAT_PING_TIMEOUT_S
    server.attach(app)
    chat_metrics.register(server, app[METRICS].registry)

    async def chat_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        chat = ChatStore(store.redis, config.chat_key_bytes(), server.limits,
                         tenants=tuple(t.id for t in config.tenants))
        app[CHAT] = chat
        await server.start(store, chat, app[HUB])
        async with periodic("chat-retention-sweep", SHRED_INTERVAL_S, lambda: retention_round(app)):
            yield
        await server.stop()

    app.cleanup_ctx.append(chat_ctx)


async def shred_expired(app: web.Application, now: float | None = None) -> list[str]:
    """One retention round over every tenant: delete data keys past retention; audited. Idempotent."""
    config, store, chat = app[CONFIG], app[STORE], app[CHAT]
    retention_s = config.retention_days * 86400
    shredded: list[str] = []
    for tenant in config.tenants:
        due = await store.consultations.past_retention(tenant.id, await chat.messages.keyed(tenant.id), retention_s,
                                                       now)
        for cid in await chat.messages.shred(tenant.id, due):
            await store.audit.record(tenant.id, Action.CHAT_SHREDDED, actor="system", role="system",
                                     consultation_id=cid)
            shredded.append(cid)
    await chat.attachments.global_usage(config.tenants[0].id)  # refresh the bytes-stored gauge
    return shredded


async def retention_round(app: web.Application, now: float | None = None) -> list[str]:
    """The whole retention policy (rooms/retention.py, README "Privacy"): shred the chats past retention, then
    delete the consultations past retention with their indexes. Returns the deleted consultations' ids."""
    config, store = app[CONFIG], app[STORE]
    await shred_expired(app, now)
    sweeper = RetentionSweeper(store.redis)
    deleted: list[str] = []
    for tenant in config.tenants:
        report = await sweeper.sweep(tenant.id, config.retention_days * 86400, now)
        deleted += report.consultations
        if report.consultations or report.tickets_given_ttl:
            log.info("retention: %d consultations deleted, %d tickets given a TTL", len(report.consultations),
                     report.tickets_given_ttl, extra={"tenant": tenant.id})
    return deleted
