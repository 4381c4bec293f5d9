"""Prometheus view of the chat server's counters, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from chat.server import ChatServer


class ChatCollector(Collector):
    def __init__(self, server: ChatServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        c = self._server.counters
        yield CounterMetricFamily("nettlege_chat_messages", "Chat messages stored (retries not counted twice)",
                                  value=c.messages)
        yield CounterMetricFamily("nettlege_chat_attachments", "Chat attachments stored", value=c.attachments)
        errors = CounterMetricFamily("nettlege_chat_errors", "Chat error events sent, by code", labels=["code"])
        for code, n in sorted(c.errors.items()):
            errors.add_metric([code], n)
        yield errors
        stored = GaugeMetricFamily("nettlege_chat_attachment_bytes",
                                   "Attachment bytes stored per tenant in the shared Redis (as last seen by this "
                                   "process: refreshed on every upload and retention round)", labels=["tenant"])
        chat = self._server.chat
        for tenant, n in sorted(chat.attachments.stored_bytes.items() if chat else ()):
            stored.add_metric([tenant], n)
        yield stored
        yield GaugeMetricFamily("nettlege_chat_connections", "Open Socket.IO connections on this process",
                                value=len(self._server.sessions))


def register(server: ChatServer, registry: CollectorRegistry) -> ChatCollector:
    collector = ChatCollector(server)
    registry.register(collector)
    return collector
