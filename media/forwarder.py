"""Subscriber side: what one subscriber receives on one m-line, packet by packet.

Each packet of the published track is sent on as it arrives, rewritten into the subscriber's stream: the
sender's SSRC, payload type and header extension ids (`RtpSendPort`), and sequence numbers and timestamps
that continue without a jump when the m-line is handed to another publisher or video resumes after a pause.
Video starts at a keyframe (a new subscriber, after a pause, behind a publisher's lost packet).

A forwarder is bound to one published track at a time. When that track goes away, the forwarder (and its
m-line) waits, unbound, for the next published track of the same kind and codec, so a phone that reconnects
a hundred times does not grow every other participant's SDP by a hundred m-lines.
"""

from __future__ import annotations

import asyncio
import random

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from media.aiortc_passthrough import RtpSendPort
from media.bandwidth import SubscriberBandwidth
from media.publisher import PublishedTrack
from media.stats import SfuCounters, TrackCounters

# RTP timestamp step inserted when a forwarder switches publisher: one video frame at 30 fps, one 20 ms
# Opus packet. Timestamps must keep increasing on one SSRC or the subscriber's jitter buffer stalls.
_SWITCH_STEP = {"video": 3000, "audio": 960}
# Input sequence numbers further back than this from the newest are not compared with the rebase point.
_WINDOW = 0x4000


class TrackForwarder(MediaStreamTrack):
    """The track an aiortc sender is given so that it negotiates an m-line; it never yields a frame (the
    sender's own RTP loop idles on it). Packets go out through `port`, set when the m-line is added."""

    def __init__(self, kind: str, subscriber_id: str, counters: SfuCounters,
                 bandwidth: SubscriberBandwidth | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.subscriber_id = subscriber_id
        self.published: PublishedTrack | None = None
        self.mime_type: str | None = None
        self.port: RtpSendPort | None = None
        self.counters = TrackCounters()
        self.paused = False
        self._bandwidth = bandwidth
        self._sfu_counters = counters
        self._stopped = asyncio.Event()
        self._waiting_for_keyframe = kind == "video"
        self._rebase_sequence = True
        self._rebase_timestamp = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq: int | None = None  # last sequence number and timestamp sent, in the subscriber's space
        self._last_ts: int | None = None
        self._newest_in: int = 0  # newest input sequence number since the rebase, and the rebase point
        self._base_in: int = 0
        self._ssrc_in: int | None = None  # the publisher's SSRC: a new one has its own numbers and clock

    def attach(self, published: PublishedTrack) -> None:
        """Start forwarding `published` (the first one, or the next one on a free m-line)."""
        self.detach()
        self.published = published
        assert published.codec is not None  # an announced track has its codec (Peer refuses an offer without)
        self.mime_type = published.codec.mimeType.lower()
        self._id = published.id
        published.add_forwarder(self)
        self._waiting_for_keyframe = self.kind == "video"
        self._rebase_sequence = True
        self._rebase_timestamp = self._last_ts is not None
        self._ssrc_in = None
        if self.port is not None and self.port.ready:
            published.request_keyframe()

    def detach(self) -> None:
        if self.published is not None:
            self.published.remove_forwarder(self)
            self.published = None

    def pause(self) -> None:
        """Stop sending video (the subscriber's link cannot carry it); audio forwarders are never paused."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.restart_at_keyframe()

    def restart_at_keyframe(self) -> None:
        """Send nothing until the next keyframe, then continue the sequence numbers without a gap."""
        if self.kind != "video":
            return
        self._waiting_for_keyframe = True
        self._rebase_sequence = True
        if self.published is not None:
            self.published.request_keyframe()

    def bandwidth_share_bps(self) -> int | None:
        return None if self._bandwidth is None else self._bandwidth.video_share_bps()

    async def forward(self, packet: RtpPacket) -> None:
        """Send one packet of the published track on to the subscriber, rewritten."""
        port = self.port
        published = self.published
        if port is None or published is None or self.paused or not port.ready:
            return
        if packet.ssrc != self._ssrc_in:
            if self._ssrc_in is not None:  # the publisher restarted its stream: continue ours without a jump
                self.restart_at_keyframe()
                self._rebase_sequence = self._rebase_timestamp = True
            self._ssrc_in = packet.ssrc
        counters = self._sfu_counters
        ends_frame = packet.marker or self.kind == "audio"
        if ends_frame:
            counters.offered_frames += 1
        if self._waiting_for_keyframe:
            if not published.keyframe_start(packet.payload):
                published.request_keyframe()
                counters.dropped_frames += ends_frame
                self.counters.dropped_frames += ends_frame
                return
            self._waiting_for_keyframe = False
        seq_in = packet.sequence_number
        if self._rebase_sequence:
            self._rebase(packet)
        else:
            ahead = (seq_in - self._newest_in) & 0xFFFF
            if ahead < 0x8000:
                self._newest_in = seq_in
                if (seq_in - self._base_in) & 0xFFFF > _WINDOW:
                    self._base_in = (seq_in - _WINDOW) & 0xFFFF
            elif (self._newest_in - seq_in) & 0xFFFF > (self._newest_in - self._base_in) & 0xFFFF:
                return  # from before the rebase: its number would fall into the previous stream's
        seq = (seq_in + self._seq_offset) & 0xFFFF
        ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        if seq_in == self._newest_in:
            self._last_seq, self._last_ts = seq, ts
        sent = await port.send(packet, seq, ts)
        if sent:
            self.counters.packets += 1
            self.counters.bytes += sent
            counters.forwarded_packets += 1
            counters.forwarded_bytes += sent
            if ends_frame:
                self.counters.frames += 1
                counters.forwarded_frames += 1

    def _rebase(self, packet: RtpPacket) -> None:
        self._rebase_sequence = False
        seq_in = packet.sequence_number
        start = random.randint(0, 0x7FFF) if self._last_seq is None else (self._last_seq + 1) & 0xFFFF
        self._seq_offset = (start - seq_in) & 0xFFFF
        if self._rebase_timestamp and self._last_ts is not None:
            self._ts_offset = (self._last_ts + _SWITCH_STEP[self.kind] - packet.timestamp) & 0xFFFFFFFF
        self._rebase_timestamp = False
        self._newest_in = self._base_in = seq_in

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI/FIR."""
        if self.published is not None:
            self.published.request_keyframe()

    async def recv(self) -> None:  # type: ignore[override]  # never yields a frame: RtpSendPort sends packets
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._stopped.set()  # the sender's RTP loop ends
