"""The store's health on the HTTP side: acks that wait for replicas, and the store's counters on /metrics.

`replicated` is the one place REST changes are made durable: with REDIS_MIN_REPLICAS_ACK=N a change is
refused up front when the primary has fewer than N replicas connected, and a successful change is answered
only after `WAIT` confirms N replicas hold it (else 503 `not_replicated` with `retry_after_s`; nothing acked).
The chat does the same before its acks (chat/server.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .appkeys import STORE
from .metrics import METRICS

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_CHANGES = frozenset({"/api/v1/dev/token", "/api/v1/auth/token"})  # POSTs that only issue a token


@web.middleware
async def replicated(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    store = request.app.get(STORE)
    if store is None or not store.durability.enabled or request.method not in WRITE_METHODS \
            or not request.path.startswith("/api/") or request.path in NOT_CHANGES:
        return await handler(request)
    await store.durability.admit()
    response = await handler(request)
    if response.status < 400:
        await store.durability.confirm()
    return response


class StoreCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        store = self._app.get(STORE)
        if store is None:
            return
        h = store.health
        yield CounterMetricFamily("nettlege_store_reconnects", "Redis commands or connects retried after a "
                                  "connection error", value=h.reconnects)
        yield CounterMetricFamily("nettlege_store_failovers", "Redis primary changes seen through Sentinel",
                                  value=h.failovers)
        yield CounterMetricFamily("nettlege_store_wait_timeouts", "WAIT calls that got fewer replicas than "
                                  "REDIS_MIN_REPLICAS_ACK (the change was not acked)", value=h.wait_timeouts)
        info = GaugeMetricFamily("nettlege_store_deployment", "The Redis deployment this process uses",
                                 labels=["kind", "min_replicas_ack"])
        info.add_metric([store.settings.kind, str(store.settings.min_replicas_ack)], 1)
        yield info


def register_store_metrics(app: web.Application) -> None:
    app[METRICS].registry.register(StoreCollector(app))
