"""Configuration of the SFU: which addresses it gathers on and announces, ICE servers, limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MediaConfig:
    # RTCIceServer dicts ({"urls", "username"?, "credential"?}) for the server's own peer connections.
    # Never None: aiortc's default is a public STUN server, which stalls gathering ~5 s when offline.
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    # Local addresses the SFU gathers host candidates on (like mediasoup's listenIps).
    # Empty: every non-loopback interface. A loopback server uses ["127.0.0.1"].
    listen_ips: tuple[str, ...] = ("127.0.0.1",)
    # Address written into the SDP instead of the listen address (1:1 NAT, like mediasoup's announcedIp).
    announced_ip: str | None = None
    # Keyframe requests (PLI) to one publisher are at most this frequent.
    keyframe_min_interval_s: float = 0.5
    # Unused since RTP-level forwarding (packets are sent as they arrive, nothing is queued); kept so
    # existing configurations still load.
    video_queue_frames: int = 30
    audio_queue_frames: int = 25
    # How long a publisher's missing video packet is waited for (its retransmission after the SFU's NACK)
    # before the packets behind it are given up on and subscribers wait for the next keyframe.
    max_gap_wait_s: float = 0.3
    # Bandwidth adaptation. A publisher's video is capped (RTCP REMB) at the least its subscribers can take
    # (each subscriber's REMB shared among the video it receives), never above `max_video_bitrate_bps`
    # (the service's cap) and never below `video_pause_bps`: a subscriber that cannot carry even that
    # gets no video at all (audio goes on) instead of pulling everyone's picture down.
    max_video_bitrate_bps: int = 1_500_000
    video_pause_bps: int = 150_000
    # Pausing can be switched off (the REMB cap stays): a CPU-starved client's estimator also reports a low
    # estimate with loss, which on a loaded test machine is not a weak link.
    pause_video_when_overrun: bool = True
    # Hysteresis: video comes back when the estimate is at least this, or, since a subscriber without
    # video sends no fresh estimate, on a probe `video_probe_after_s` after the pause.
    video_resume_bps: int = 250_000
    video_pause_after_s: float = 2.0
    video_pause_loss: float = 0.1  # fraction of video lost (receiver reports) or NACKed that says the link is overrun
    # Round-trip growth over the least seen that says the subscriber's link queues what it cannot carry.
    video_pause_queue_delay_s: float = 0.15
    video_probe_after_s: float = 5.0
    # What a subscriber's audio streams are assumed to need out of its estimate (Opus voice ~32 kbit/s + RTP).
    audio_allowance_bps: int = 48_000
    # Of a subscriber's estimate, the share its streams may fill. A receive-side estimate tracks what the link
    # delivers, so streams sized to all of it leave no room for retransmissions (RTX) and bursts: a shaped
    # 500 kbit/s link then stays full, loses audio and freezes video (measured with Chromium behind tbf).
    estimate_headroom: float = 0.8
    sdp_max_bytes: int = 64 * 1024
    # Remote ICE candidates accepted per peer connection (trickled) or per SDP; they are never dialled (ICE-lite).
    max_remote_candidates: int = 30
    # Receive buffer per media socket (one per peer connection). None keeps aioice's 256 KiB, which the
    # kernel doubles: ~4 s of one participant's media. Larger only turns loss into delay when the event
    # loop is starved; raise it (and net.core.rmem_max) for short stalls, e.g. long GC pauses.
    udp_receive_buffer_bytes: int | None = None
    max_participants: int = 6
    # How often per-participant stats are sampled and pushed in a `participants` update.
    stats_interval_s: float = 3.0

    @classmethod
    def for_host(cls, host: str, listen_ips: tuple[str, ...] | None = None, **kwargs: Any) -> MediaConfig:
        """A config whose candidates match the address the server is bound to, unless `listen_ips` is given:
        a loopback host listens on loopback only, a specific address on that address only, a wildcard
        (0.0.0.0, ::) or a host name on every non-loopback interface."""
        if listen_ips is None:
            listen_ips = default_listen_ips(host)
        return cls(listen_ips=tuple(listen_ips), **kwargs)


def default_listen_ips(host: str) -> tuple[str, ...]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ("127.0.0.1",) if host == "localhost" else ()
    if address.is_loopback:
        return ("127.0.0.1",)
    if address.is_unspecified:
        return ()
    return (str(address),)
