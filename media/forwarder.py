"""Subscriber side: what one subscriber receives on one m-line, behind a bounded queue.

A forwarder is bound to one published track at a time. When that track goes away, the forwarder (and its
m-line) waits, unbound, for the next published track of the same kind and codec, so a phone that reconnects
a hundred times does not grow every other participant's SDP by a hundred m-lines.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.payload import EncodedFrame
from media.publisher import PublishedTrack
from media.stats import SfuCounters, TrackCounters

# RTP timestamp step inserted when a forwarder switches publisher: one video frame at 30 fps, one 20 ms
# Opus packet. Timestamps must keep increasing on one SSRC or the subscriber's jitter buffer stalls.
_SWITCH_STEP = {"video": 3000, "audio": 960}


class TrackForwarder(MediaStreamTrack):
    """The track an aiortc sender reads; yields `EncodedFrame`s, which the pass-through packer sends as they
    are. A subscriber that cannot keep up loses frames, never memory: the queue holds at most `max_frames`.
    After losing video it waits for the next keyframe (and asks for one), since later frames depend on it."""

    def __init__(self, kind: str, subscriber_id: str, max_frames: int, counters: SfuCounters) -> None:
        super().__init__()
        self.kind = kind
        self.subscriber_id = subscriber_id
        self.published: PublishedTrack | None = None
        self.mime_type: str | None = None
        self.counters = TrackCounters()
        self._sfu_counters = counters
        self._queue: deque[EncodedFrame] = deque()
        self._max_frames = max_frames
        self._ready = asyncio.Event()
        self._started = False  # frames are only queued once the sender reads: no backlog before connect
        self._waiting_for_keyframe = kind == "video"
        self._last_timestamp: int | None = None
        self._timestamp_offset = 0
        self._rebase = False

    def attach(self, published: PublishedTrack) -> None:
        """Start forwarding `published` (the first one, or the next one on a free m-line)."""
        self.detach()
        self.published = published
        self.mime_type = published.codec.mimeType.lower()
        self._id = published.id
        published.add_forwarder(self)
        self._waiting_for_keyframe = self.kind == "video"
        self._rebase = True
        if self._started:
            published.request_keyframe()

    def detach(self) -> None:
        if self.published is not None:
            self.published.remove_forwarder(self)
            self.published = None
        self._queue.clear()

    def push(self, frame: EncodedFrame) -> None:
        if not self._started or self.published is None:
            return
        self._sfu_counters.offered_frames += 1
        if self._waiting_for_keyframe:
            if not frame.keyframe:
                self._drop(1)
                self.published.request_keyframe()
                return
            self._waiting_for_keyframe = False
        if self._rebase:
            self._rebase = False
            if self._last_timestamp is not None:
                self._timestamp_offset = self._last_timestamp + _SWITCH_STEP[self.kind] - frame.timestamp
        if self._timestamp_offset:
            frame = EncodedFrame(frame.data, (frame.timestamp + self._timestamp_offset) & 0xFFFFFFFF,
                                 frame.keyframe)
        self._last_timestamp = frame.timestamp
        if len(self._queue) >= self._max_frames:
            if self.kind == "video" and not frame.keyframe:
                self._drop(len(self._queue) + 1)
                self._queue.clear()
                self._waiting_for_keyframe = True
                self.published.request_keyframe()
                return
            if self.kind == "video":
                self._drop(len(self._queue))
                self._queue.clear()
            else:
                self._drop(1)
                self._queue.popleft()
        self._queue.append(frame)
        self._ready.set()

    def wait_for_keyframe(self) -> None:
        if self.kind == "video":
            self._waiting_for_keyframe = True

    def _drop(self, frames: int) -> None:
        self.counters.dropped_frames += frames
        self._sfu_counters.dropped_frames += frames

    def on_packed(self, packets: int, nbytes: int) -> None:
        self.counters.frames += 1
        self.counters.packets += packets
        self.counters.bytes += nbytes
        self._sfu_counters.forwarded_frames += 1
        self._sfu_counters.forwarded_packets += packets
        self._sfu_counters.forwarded_bytes += nbytes

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI/FIR."""
        if self.published is not None:
            self.published.request_keyframe()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        if not self._started:
            self._started = True
            if self._waiting_for_keyframe and self.published is not None:
                self.published.request_keyframe()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._ready.set()  # wake the sender so it sees the end
