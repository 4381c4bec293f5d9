"""Publisher side: one track a participant sends, each RTP packet fanned out to every subscriber's forwarder
as it arrives.

Video packets are handed on in sequence: a packet behind a missing one waits (while the SFU's NACK brings
the missing one back) for at most `max_gap_wait_s`; after that the missing packet is given up on and
subscribers wait for the next keyframe, so a subscriber never sees a hole in its sequence numbers that
nobody could fill. Without loss nothing waits. Audio goes on as it comes (Opus conceals a lost packet).

The publisher is also told how much it may send: a REMB that is the least of its subscribers' shares,
capped by the service's maximum (see `media.bandwidth`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.config import MediaConfig
from media.keyframes import KeyframeRequester
from media.rtp import keyframe_start_detector
from media.stats import SfuCounters, TrackCounters

if TYPE_CHECKING:
    from media.aiortc_passthrough import RtpTap
    from media.forwarder import TrackForwarder

log = logging.getLogger(__name__)

# How often the publisher of a video track is told its cap (REMB); sooner when a subscriber's estimate drops.
REMB_INTERVAL_S = 0.5
# Packets held behind a hole at most (a burst of loss longer than this gives up at once).
MAX_HELD = 256
# Packets in a row from before the expected one after which the publisher's numbering is taken as restarted.
STALE_RESYNC = 50


class PublishedTrack:
    def __init__(self, *, track_id: str, kind: str, label: str, participant_id: str,
                 codec: RTCRtpCodecParameters | None, send_pli: Callable[[], Awaitable[bool]],
                 config: MediaConfig, counters: SfuCounters,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.id = track_id
        self.kind = kind
        self.label = label
        self.participant_id = participant_id
        self.codec = codec
        self.counters = TrackCounters()
        self.tap: RtpTap | None = None  # set by the peer: the receiver's tap, for REMB and the uplink estimate
        self.bitrate_bps = 0.0  # what the publisher sends, sampled with the stats
        self._rate_sample: tuple[float, int] | None = None
        self._config = config
        self._sfu_counters = counters
        self._clock = clock
        self._forwarders: set[TrackForwarder] = set()
        self._keyframes = KeyframeRequester(send_pli, config.keyframe_min_interval_s)
        self._keyframe_start: Callable[[bytes], bool] | None = None
        self._expected: int | None = None  # next video sequence number to hand on
        self._ssrc: int | None = None
        self._retired: set[int] = set()  # SSRCs the publisher sent with before: their late packets go nowhere
        self._stale = 0  # packets in a row from before `_expected`
        self._held: dict[int, RtpPacket] = {}
        self._hole_since: float | None = None
        self._next_remb_at = 0.0
        self._last_remb: int | None = None
        # After a codec switch (`switch_codec`): the one payload type still forwarded, so packets of the old
        # codec still on their way are dropped; and whether the new codec's first packet starts a new stream.
        self._payload_type: int | None = None
        self._switched = False
        self.vp8_coming = False  # this H264 track is being switched to VP8 (`Peer.use_vp8`)
        self.closed = False

    def describe(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "label": self.label}

    def add_forwarder(self, forwarder: TrackForwarder) -> None:
        self._forwarders.add(forwarder)

    def remove_forwarder(self, forwarder: TrackForwarder) -> None:
        self._forwarders.discard(forwarder)

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self._sfu_counters.keyframe_requests += 1
            self._keyframes.request()

    def hold_codec(self) -> None:
        """A switch of codec is offered to the publisher: until its answer arrives, only packets of the current
        codec are forwarded (a browser sends the new one as soon as it has answered)."""
        if self.codec is not None:
            self._payload_type = self.codec.payloadType

    def switch_codec(self, codec: RTCRtpCodecParameters) -> None:
        """The publisher now sends `codec` (the SFU renegotiated its m-line, e.g. H264 -> VP8 for a participant
        that cannot decode H264). Subscribers' forwarders were bound to the old codec's m-lines: they are let
        go (the room binds each subscriber anew), and a keyframe of the new codec is asked for."""
        self.codec = codec
        self.vp8_coming = False
        self._keyframe_start = None
        self._payload_type = codec.payloadType
        self._switched = True
        for forwarder in list(self._forwarders):
            forwarder.detach()
        self._forwarders.clear()
        self._held.clear()
        self._hole_since = None
        self.request_keyframe()

    def keyframe_start(self, payload: bytes) -> bool:
        if self._keyframe_start is None:
            self._keyframe_start = keyframe_start_detector(self.codec.mimeType if self.codec else self.kind)
        return self._keyframe_start(payload)

    # --- the per-packet path ------------------------------------------------------------------------

    async def on_packet(self, packet: RtpPacket, is_video: bool) -> None:
        """Called by the receiver's tap, on the event loop, for every RTP packet (RTX already unwrapped)."""
        self.counters.packets += 1
        self.counters.bytes += len(packet.payload)
        self._sfu_counters.received_packets += 1
        self._sfu_counters.received_bytes += len(packet.payload)
        if packet.ssrc != self._ssrc:
            if packet.ssrc in self._retired:
                return
            if self._ssrc is not None:
                self._retired.add(self._ssrc)
            if not is_video:
                self._ssrc = packet.ssrc
        if not is_video:
            await self._fan_out(packet)
            return
        if self._payload_type is not None:
            if packet.payload_type != self._payload_type:
                return  # the old codec's, from before a switch
            if self._switched:  # the new codec's first packet: numbers may restart (a new encoder)
                self._switched = False
                self._expected = None
        await self._in_sequence(packet)
        if self._clock() >= self._next_remb_at:
            await self.send_bitrate_cap()

    async def _fan_out(self, packet: RtpPacket) -> None:
        for forwarder in tuple(self._forwarders):
            await forwarder.forward(packet)

    async def _in_sequence(self, packet: RtpPacket) -> None:
        seq = packet.sequence_number
        if self._expected is None or packet.ssrc != self._ssrc:
            self._resync(packet)  # the first packet, or a new SSRC
        assert self._expected is not None  # _resync sets it on the first packet
        ahead = (seq - self._expected) & 0xFFFF
        if ahead >= 0x8000:
            # A duplicate, or the retransmission of a packet already given up on; many in a row mean the
            # publisher's sequence numbers jumped back (a restarted encoder): start again from here.
            self._stale += 1
            if self._stale < STALE_RESYNC:
                return
            self._resync(packet)
            ahead = 0
        self._stale = 0
        if ahead:  # a hole before this packet: hold it while the missing one is retransmitted
            self._held[seq] = packet
            now = self._clock()
            if self._hole_since is None:
                self._hole_since = now
            if now - self._hole_since >= self._config.max_gap_wait_s or len(self._held) > MAX_HELD:
                await self._give_up_hole()
            return
        await self._fan_out(packet)
        self._expected = (seq + 1) & 0xFFFF
        await self._release_held()

    def _resync(self, packet: RtpPacket) -> None:
        """A new stream (first packet, new SSRC, or numbers that jumped back): subscribers restart at a
        keyframe and their sequence numbers continue without a gap."""
        restart = self._expected is not None
        self._ssrc = packet.ssrc
        self._expected = packet.sequence_number
        self._held.clear()
        self._hole_since = None
        self._stale = 0
        if restart:
            for forwarder in self._forwarders:
                forwarder.restart_at_keyframe()

    async def _release_held(self) -> None:
        while self._held:
            assert self._expected is not None  # packets are held only after the first one set it
            packet = self._held.pop(self._expected, None)
            if packet is None:
                self._hole_since = self._clock()  # the next hole starts its own wait
                return
            await self._fan_out(packet)
            self._expected = (packet.sequence_number + 1) & 0xFFFF
        self._hole_since = None

    async def _give_up_hole(self) -> None:
        """The missing packets are lost for good: what follows them cannot be decoded before a keyframe."""
        self.counters.dropped_frames += 1
        expected = self._expected
        assert expected is not None  # a hole is only found after the first packet set it
        self._expected = min(self._held, key=lambda s: (s - expected) & 0xFFFF)
        for forwarder in self._forwarders:
            forwarder.restart_at_keyframe()
        self.request_keyframe()
        await self._release_held()

    # --- bandwidth ----------------------------------------------------------------------------------

    def bitrate_cap(self) -> int:
        """The least of the subscribers' shares, within [video_pause_bps, max_video_bitrate_bps]."""
        config = self._config
        cap = config.max_video_bitrate_bps
        for forwarder in self._forwarders:
            share = forwarder.bandwidth_share_bps()
            if share is not None and share < cap:
                cap = share
        return max(cap, min(config.video_pause_bps, config.max_video_bitrate_bps))

    async def send_bitrate_cap(self) -> None:
        """Tell the publisher (REMB) what it may send: the cap, or less if its own uplink estimate says so."""
        tap = self.tap
        if tap is None or self.kind != "video":
            return
        self._next_remb_at = self._clock() + REMB_INTERVAL_S
        value = self.bitrate_cap()
        if tap.upstream_bps is not None:
            value = min(value, tap.upstream_bps)
        self._last_remb = value
        await tap.remb(value)

    def subscriber_estimate_changed(self) -> None:
        """A subscriber's estimate changed: send the cap with the next packet if it is now lower."""
        if self._last_remb is not None and self.bitrate_cap() < self._last_remb:
            self._next_remb_at = 0.0

    def sample_bitrate(self, now: float) -> None:
        if self._rate_sample is not None and now > self._rate_sample[0]:
            self.bitrate_bps = 8 * (self.counters.bytes - self._rate_sample[1]) / (now - self._rate_sample[0])
        self._rate_sample = (now, self.counters.bytes)

    def close(self) -> None:
        """The publisher left or stopped sending: its forwarders fall idle until reused or stopped."""
        self.closed = True
        self._keyframes.close()
        for forwarder in list(self._forwarders):
            forwarder.detach()
        self._forwarders.clear()
        self._held.clear()
