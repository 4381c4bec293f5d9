"""Subscriber side: one published track as one subscriber receives it, behind a bounded queue."""

from __future__ import annotations

import asyncio
from collections import deque

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.payload import EncodedFrame
from media.publisher import PublishedTrack
from media.stats import SfuCounters, TrackCounters


class TrackForwarder(MediaStreamTrack):
    """The track an aiortc sender reads; yields `EncodedFrame`s, which the pass-through packer sends as they
    are. A subscriber that cannot keep up loses frames, never memory: the queue holds at most `max_frames`.
    After losing video it waits for the next keyframe (and asks for one), since later frames depend on it."""

    def __init__(self, published: PublishedTrack, subscriber_id: str, max_frames: int,
                 counters: SfuCounters) -> None:
        super().__init__()
        self.kind = published.kind
        self._id = published.id  # the subscriber sees the published track's id in the msid
        self.published = published
        self.subscriber_id = subscriber_id
        self.counters = TrackCounters()
        self._sfu_counters = counters
        self._queue: deque[EncodedFrame] = deque()
        self._max_frames = max_frames
        self._ready = asyncio.Event()
        self._started = False  # frames are only queued once the sender reads: no backlog before connect
        self._waiting_for_keyframe = published.kind == "video"

    def push(self, frame: EncodedFrame) -> None:
        if not self._started or self.readyState != "live":
            return
        if self._waiting_for_keyframe:
            if not frame.keyframe:
                self._drop(1)
                self.published.request_keyframe()
                return
            self._waiting_for_keyframe = False
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

    def _drop(self, frames: int) -> None:
        self.counters.dropped_frames += frames
        self._sfu_counters.dropped_frames += frames

    def on_packed(self, packets: int, nbytes: int) -> None:
        self.counters.frames += 1
        self.counters.packets += packets
        self.counters.bytes += nbytes
        self._sfu_counters.forwarded_packets += packets
        self._sfu_counters.forwarded_bytes += nbytes

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI/FIR."""
        self.published.request_keyframe()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        if not self._started:
            self._started = True
            if self._waiting_for_keyframe:
                self.published.request_keyframe()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self.published.remove_forwarder(self)
        self._ready.set()  # wake the sender so it sees the end
