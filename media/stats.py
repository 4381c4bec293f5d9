"""Counters of the media path: per track (read by `participants()`), per SFU (read by a metrics exporter)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SfuCounters:
    """Monotonic totals of one SFU process; `media.metrics` exposes them to Prometheus."""

    forwarded_packets: int = 0
    forwarded_bytes: int = 0
    # Frames (a video frame ends at the RTP marker bit, every Opus packet is one) that reached a
    # subscriber's forwarder, and of those the ones sent (the rest waited for a keyframe): delivered ratio.
    offered_frames: int = 0
    forwarded_frames: int = 0
    received_packets: int = 0
    received_bytes: int = 0
    dropped_frames: int = 0
    video_pauses: int = 0  # a subscriber's video paused for lack of bandwidth
    keyframe_requests: int = 0
    peer_connections_opened: int = 0
    peer_connections_closed: int = 0


@dataclass
class TrackCounters:
    frames: int = 0
    bytes: int = 0
    packets: int = 0
    dropped_frames: int = 0


@dataclass
class ParticipantStats:
    """One participant's connection quality, as the client shows it (fractions, bits per second, seconds)."""

    bitrate_in_bps: float = 0.0   # what the participant publishes, as received by the server
    bitrate_out_bps: float = 0.0  # what the server forwards to the participant
    packet_loss_in: float = 0.0   # fraction of the participant's packets lost on the way to the server
    packet_loss_out: float = 0.0  # fraction lost on the way to the participant (its receiver reports)
    rtt_s: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "bitrate_in_bps": round(self.bitrate_in_bps),
            "bitrate_out_bps": round(self.bitrate_out_bps),
            "packet_loss_in": round(self.packet_loss_in, 4),
            "packet_loss_out": round(self.packet_loss_out, 4),
            "rtt_s": None if self.rtt_s is None else round(self.rtt_s, 4),
        }

    @property
    def quality(self) -> str:
        """`good`, `fair` or `poor`, for a simple indicator in the client."""
        loss = max(self.packet_loss_in, self.packet_loss_out)
        rtt = self.rtt_s or 0.0
        if loss > 0.08 or rtt > 0.6:
            return "poor"
        if loss > 0.02 or rtt > 0.3:
            return "fair"
        return "good"
