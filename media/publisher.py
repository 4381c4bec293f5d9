"""Publisher side: one track a participant sends, fanned out to every subscriber's forwarder."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.keyframes import KeyframeRequester
from media.payload import EncodedFrame, is_keyframe
from media.stats import SfuCounters, TrackCounters

if TYPE_CHECKING:
    from media.forwarder import TrackForwarder

log = logging.getLogger(__name__)


class PublishedTrack:
    def __init__(self, *, track_id: str, kind: str, label: str, participant_id: str,
                 codec: RTCRtpCodecParameters | None, send_pli: Callable[[], Awaitable[bool]],
                 keyframe_min_interval_s: float, counters: SfuCounters) -> None:
        self.id = track_id
        self.kind = kind
        self.label = label
        self.participant_id = participant_id
        self.codec = codec
        self.counters = TrackCounters()
        self._sfu_counters = counters
        self._forwarders: set[TrackForwarder] = set()
        self._keyframes = KeyframeRequester(send_pli, keyframe_min_interval_s)
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

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        """Called by aiortc's receiver, on the event loop, for every reassembled encoded frame."""
        data = frame.data
        encoded = EncodedFrame(data=data, timestamp=frame.timestamp,
                               keyframe=self.kind == "audio" or is_keyframe(codec.mimeType, data))
        self.counters.frames += 1
        self.counters.bytes += len(data)
        self._sfu_counters.received_frames += 1
        self._sfu_counters.received_bytes += len(data)
        for forwarder in self._forwarders:
            forwarder.push(encoded)

    def on_gap(self) -> None:
        """Frames were lost for good: later frames refer to them, so subscribers wait for a keyframe."""
        self.counters.dropped_frames += 1
        if self.kind == "video":
            for forwarder in self._forwarders:
                forwarder.wait_for_keyframe()

    def close(self) -> None:
        """The publisher left or stopped sending: its forwarders fall idle until reused or stopped."""
        self.closed = True
        self._keyframes.close()
        for forwarder in list(self._forwarders):
            forwarder.detach()
        self._forwarders.clear()
