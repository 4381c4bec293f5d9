"""Prometheus metrics with prometheus-client, in a registry owned by the app (no module globals)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("nettlege_http_requests", "HTTP requests", ["method", "status"], registry=r)
        self.http_errors = Counter("nettlege_http_errors", "HTTP responses with status >= 400", ["code"],
                                   registry=r)
        self.queue_length = Gauge("nettlege_queue_length", "Waiting tickets", ["tenant", "service"], registry=r)
        self.oldest_wait = Gauge("nettlege_queue_oldest_wait_seconds", "Wait of the oldest waiting ticket",
                                 ["tenant", "service"], registry=r)
        self.tickets_abandoned = Counter("nettlege_tickets_abandoned", "Tickets dropped after the grace period",
                                         ["tenant"], registry=r)
        self.signal_errors = Counter("nettlege_signal_errors", "Signaling error events sent, by code", ["code"],
                                     registry=r)
        self.signal_sessions = Gauge("nettlege_signal_sessions", "Open signaling WebSockets (participants)",
                                     registry=r)
        self.request_seconds = Histogram("nettlege_http_request_seconds", "HTTP request latency", registry=r)

    def render(self) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp


METRICS = web.AppKey("metrics", Metrics)
