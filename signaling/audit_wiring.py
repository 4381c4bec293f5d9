"""Seals the audit trail and verifies it on a schedule (rooms/audit_seal.py does the work).

Every `audit_seal_interval_s` the sealer chains the new entries of every tenant and writes a signed checkpoint
to `audit_checkpoint_path` (JSON lines, outside Redis); every `audit_verify_interval_s` the whole trail is
verified. Results on /metrics: `nettlege_audit_verify_ok{tenant}` (1 intact, 0 not) and
`nettlege_audit_last_verified_timestamp_seconds{tenant}`; a failed verification is an ERROR log line
(`audit trail verification failed`, with the tenant and the ids of the entries concerned -- never content).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Gauge

from rooms.audit_seal import AuditSealer, CheckpointSink, FileCheckpoints, MemoryCheckpoints

from .appkeys import CONFIG, STORE
from .metrics import METRICS
from .periodic import periodic

log = logging.getLogger(__name__)

AUDIT_SEALER = web.AppKey("audit_sealer", AuditSealer)


class AuditMetrics:
    def __init__(self, app: web.Application) -> None:
        r = app[METRICS].registry
        self.ok = Gauge("nettlege_audit_verify_ok", "1 when the last verification found the audit trail intact",
                        ["tenant"], registry=r)
        self.verified_at = Gauge("nettlege_audit_last_verified_timestamp_seconds",
                                 "When the audit trail was last verified (Unix time)", ["tenant"], registry=r)


AUDIT_METRICS = web.AppKey("audit_metrics", AuditMetrics)


async def verify_all(app: web.Application) -> dict[str, list[str]]:
    """Seal, then verify every tenant; updates the gauges and logs an ERROR for each broken trail."""
    sealer, config, gauges = app[AUDIT_SEALER], app[CONFIG], app[AUDIT_METRICS]
    problems: dict[str, list[str]] = {}
    for tenant in config.tenants:
        await sealer.seal(tenant.id)
        bad = await sealer.verify(tenant.id)
        problems[tenant.id] = bad
        gauges.ok.labels(tenant.id).set(0 if bad else 1)
        gauges.verified_at.labels(tenant.id).set(time.time())
        if bad:
            log.error("audit trail verification failed", extra={"tenant": tenant.id, "entries": bad[:20],
                                                                 "problems": len(bad)})
    return problems


def setup_audit(app: web.Application) -> None:
    app[AUDIT_METRICS] = AuditMetrics(app)

    async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        sink: CheckpointSink
        if config.audit_checkpoint_path:
            sink = FileCheckpoints(config.audit_checkpoint_path)
        else:
            log.warning("audit_checkpoint_path not set: audit checkpoints are kept in memory only "
                        "(env NETTLEGE_AUDIT_CHECKPOINTS; not for production)")
            sink = MemoryCheckpoints()
        app[AUDIT_SEALER] = AuditSealer(app[STORE].redis, config.audit_key_bytes(), sink)
        async with periodic("audit-seal", config.audit_seal_interval_s, _round(app)):
            yield

    app.cleanup_ctx.append(audit_ctx)


def _round(app: web.Application) -> Callable[[], Awaitable[None]]:
    config = app[CONFIG]
    next_verify = 0.0  # verify once at start-up, then every audit_verify_interval_s

    async def seal_or_verify() -> None:
        nonlocal next_verify
        if time.monotonic() >= next_verify:
            await verify_all(app)
            next_verify = time.monotonic() + config.audit_verify_interval_s
        else:
            for tenant in config.tenants:
                await app[AUDIT_SEALER].seal(tenant.id)
    return seal_or_verify
