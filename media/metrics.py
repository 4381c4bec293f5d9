"""Prometheus view of the SFU's counters, read at scrape time (nothing is counted twice on the hot path)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from media.sfu import Sfu


class SfuCollector(Collector):
    """Register with `registry.register(SfuCollector(sfu))` in the application's composition root."""

    def __init__(self, sfu: Sfu) -> None:
        self._sfu = sfu

    def collect(self) -> Iterator[Metric]:
        c = self._sfu.counters
        for name, doc, value in (
            ("nettlege_media_forwarded_packets", "RTP packets forwarded to subscribers", c.forwarded_packets),
            ("nettlege_media_forwarded_bytes", "RTP payload bytes forwarded to subscribers", c.forwarded_bytes),
            ("nettlege_media_received_packets", "RTP packets received from publishers", c.received_packets),
            ("nettlege_media_received_bytes", "RTP payload bytes received from publishers", c.received_bytes),
            ("nettlege_media_dropped_frames", "Frames not sent while a subscriber waited for a keyframe",
             c.dropped_frames),
            ("nettlege_media_video_pauses", "Subscribers' video paused for lack of bandwidth", c.video_pauses),
            ("nettlege_media_offered_frames", "Frames handed to subscribers' forwarders", c.offered_frames),
            ("nettlege_media_forwarded_frames", "Frames sent to subscribers (delivered ratio: / offered)",
             c.forwarded_frames),
            ("nettlege_media_keyframe_requests", "Keyframe requests (before rate limiting)", c.keyframe_requests),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        rooms = self._sfu.rooms()
        yield GaugeMetricFamily("nettlege_media_rooms", "Consultations with media", value=len(rooms))
        yield GaugeMetricFamily("nettlege_media_peer_connections", "Open peer connections",
                                value=c.peer_connections_opened - c.peer_connections_closed)
        yield GaugeMetricFamily("nettlege_media_udp_receive_errors",
                                "Kernel UDP receive-buffer errors (whole host; drops when the loop falls behind)",
                                value=udp_receive_errors())


def udp_receive_errors() -> int:
    """`RcvbufErrors` from /proc/net/snmp (Linux); 0 where it is not available."""
    try:
        with open("/proc/net/snmp") as f:
            lines = [line.split() for line in f if line.startswith("Udp:")]
        header, values = lines[0], lines[1]
        return int(values[header.index("RcvbufErrors")])
    except (OSError, IndexError, ValueError):
        return 0


def register(sfu: Sfu, registry: CollectorRegistry) -> SfuCollector:
    collector = SfuCollector(sfu)
    registry.register(collector)
    return collector
