"""aiortc clients that publish marked media and check what they receive; used by tests and load tests (not shipped).

A publisher's video carries its frame counter as black/white blocks in the top band and its sender id in
the second band, so a subscriber that decodes the picture can tell whose frame it is and that frames arrive
in order. Audio is a sine tone. Clients gather on loopback only, like the server in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack, VideoStreamTrack

from media import aiortc_passthrough
from media.ice import rtc_configuration
from media.rtp import keyframe_start_detector

log = logging.getLogger(__name__)

COUNTER_BITS = 16
SENDER_BITS = 8


class MarkerVideoTrack(VideoStreamTrack):
    """Frames with a counter and a sender id drawn as blocks. The rest of the picture is flat grey (a few
    kbit/s: costs nothing to encode), or `noise` (full-range noise: the encoder spends bits, more than any
    target it is given), or `scene`, like a camera: a smooth gradient, a disc moving across it and faint
    sensor noise, which a live encoder compresses to whatever bitrate it is told (aiortc's VP8 follows
    REMB with it, from its 250 kbit/s floor up)."""

    SCENE_NOISE = 3  # grey levels of sensor noise: enough that the encoder has detail to give up

    def __init__(self, sender_id: int, width: int = 320, height: int = 240, noise: bool = False,
                 scene: bool = False) -> None:
        super().__init__()
        self.sender_id = sender_id
        self.width, self.height = width, height
        self.block = width // COUNTER_BITS
        self.counter = 0
        self._noise = noise
        self._scene = scene
        self._rng = np.random.default_rng(sender_id)
        self._y = np.full((height, width), 128, dtype=np.uint8)
        rows, columns = np.mgrid[0:height, 0:width]
        self._grid = (rows, columns)
        self._gradient = (60 + 100 * columns / width + 60 * rows / height).astype(np.float32)
        self._u = np.full((height // 2, width // 2), (sender_id * 37) % 256, dtype=np.uint8)
        self._v = np.full((height // 2, width // 2), (sender_id * 91) % 256, dtype=np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        y = self._y
        b = self.block
        if self._noise:
            y[2 * b:] = self._rng.integers(0, 256, size=(self.height - 2 * b, self.width), dtype=np.uint8)
        elif self._scene:
            y[2 * b:] = self._scene_rows(2 * b)
        for i in range(COUNTER_BITS):
            y[0:b, i * b:(i + 1) * b] = 255 if (self.counter >> (COUNTER_BITS - 1 - i)) & 1 else 0
        for i in range(SENDER_BITS):
            y[b:2 * b, i * b:(i + 1) * b] = 255 if (self.sender_id >> (SENDER_BITS - 1 - i)) & 1 else 0
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, (y, self._u, self._v), strict=True):
            write_plane(plane, data)
        frame.pts, frame.time_base = pts, time_base
        self.counter = (self.counter + 1) % (1 << COUNTER_BITS)
        return frame

    def _scene_rows(self, top: int) -> np.ndarray:
        rows, columns = self._grid
        t = self.counter
        cx = self.width / 2 + self.width / 3 * math.sin(t / 20)
        cy = self.height / 2 + self.height / 4 * math.cos(t / 15)
        picture = self._gradient.copy()
        picture[(columns - cx) ** 2 + (rows - cy) ** 2 < (self.height / 8) ** 2] = 230
        picture += self._rng.normal(0, self.SCENE_NOISE, size=picture.shape).astype(np.float32)
        return np.clip(picture[top:], 0, 255).astype(np.uint8)


def write_plane(plane: Any, data: np.ndarray) -> None:
    stride = plane.line_size
    if stride == data.shape[1]:
        plane.update(data.tobytes())
    else:
        padded = np.zeros((data.shape[0], stride), dtype=np.uint8)
        padded[:, : data.shape[1]] = data
        plane.update(padded.tobytes())


def read_marker(frame: av.VideoFrame) -> tuple[int, int]:
    """(sender id, counter) drawn by `MarkerVideoTrack`."""
    y = frame.to_ndarray(format="gray")
    b = frame.width // COUNTER_BITS
    half = b // 2

    def bits(row: int, count: int) -> int:
        value = 0
        for i in range(count):
            value = (value << 1) | int(y[row * b + half, i * b + half] > 128)
        return value

    return bits(1, SENDER_BITS), bits(0, COUNTER_BITS)


class ToneAudioTrack(MediaStreamTrack):
    """A 48 kHz mono sine tone in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self._frequency = frequency
        self._samples = int(AUDIO_PTIME * 48000)
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += self._samples
            wait = self._start + self._pts / 48000 - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(self._samples) + self._pts) / 48000
        samples = (np.sin(2 * math.pi * self._frequency * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


@dataclass
class ReceivedTrack:
    """What a subscriber got on one track."""

    track_id: str
    kind: str
    stream_id: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    first_frame_at: float | None = None
    frames: int = 0
    markers: list[tuple[int, int]] = field(default_factory=list)  # (sender id, counter)
    loud_frames: int = 0  # audio frames with a tone in them
    last_frame_at: float | None = None
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (ended at, seconds): longer than GAP_S

    GAP_S = 0.2  # a pause between two frames worth noting (audio frames are 20 ms, video ones 33 ms)

    def counters_in_order(self) -> bool:
        counters = [c for _, c in self.markers]
        return all(b > a for a, b in itertools.pairwise(counters))


Signal = Callable[[dict[str, Any]], Awaitable[None]]


class MediaClient:
    """An aiortc participant speaking the signaling protocol to a `media.Peer` (or a WebSocket adapter).

    `deliver(message)` takes a server message; `to_server(message)` is set by whoever connects the client.
    """

    def __init__(self, name: str, *, sender_id: int = 1, video_labels: tuple[str, ...] = ("camera",),
                 audio: bool = True, ice_servers: list[dict[str, Any]] | None = None,
                 relay_only: bool = False, size: tuple[int, int] = (320, 240), noise: bool = False,
                 listen_ips: tuple[str, ...] = ("127.0.0.1",), decode: bool = True,
                 video_codec: str = "video/vp8", rewrite_offer: Callable[[str], str] | None = None,
                 audio_bitrate: int | None = None, scene: bool = False, loss_in: float = 0.0,
                 loss_out: float = 0.0) -> None:
        self.name = name
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers or [], relay_only=relay_only))
        self._listen_ips = listen_ips
        self._decode = decode
        self._video_codec = video_codec
        self._size = size
        self._rewrite_offer = rewrite_offer  # e.g. to number payload types the way a browser does
        self.video_tracks = [MarkerVideoTrack(sender_id + i, *size, noise=noise, scene=scene)
                             for i in range(len(video_labels))]
        # A lossy link in userspace (no netem here): this share of the RTP received / sent is dropped.
        self.loss_in = aiortc_passthrough.RtpLoss(loss_in, seed=sender_id) if loss_in else None
        self.loss_out = aiortc_passthrough.RtpLoss(loss_out, seed=sender_id + 1000) if loss_out else None
        self.video_labels = video_labels
        self.audio_track = ToneAudioTrack() if audio else None
        self._audio_bitrate = audio_bitrate  # Opus bit/s; None: aiortc's 96 kbit/s, not a browser's voice rate
        self.received: dict[str, ReceivedTrack] = {}
        self.participants: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.server_offers = 0
        self.ended: dict[str, Any] | None = None
        self.answered_at: float | None = None
        self.to_server: Signal | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    async def deliver(self, message: dict[str, Any]) -> None:
        self._inbox.put_nowait(message)

    def start(self, to_server: Signal) -> None:
        self.to_server = to_server
        self._runner = asyncio.create_task(self._run())

    async def offer(self) -> None:
        """The first offer: published tracks as sendonly, or a recvonly transceiver if nothing is published."""
        labels: dict[str, str] = {}
        for track, label in zip(self.video_tracks, self.video_labels, strict=True):
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            _prefer(transceiver, self._video_codec)
            labels[track.id] = label
        if self.audio_track is not None:
            transceiver = self.pc.addTransceiver(self.audio_track, direction="sendonly")
            _prefer(transceiver, "audio/opus")
            if self._audio_bitrate is not None:
                aiortc_passthrough.set_opus_bitrate(transceiver.sender, self._audio_bitrate)
        if not self.video_tracks and self.audio_track is None:
            self.pc.addTransceiver("video", direction="recvonly")
        aiortc_passthrough.restrict_gathering(self.pc, self._listen_ips, None)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._lose_on_transports()
        sdp = self.pc.localDescription.sdp
        if self._rewrite_offer is not None:
            sdp = self._rewrite_offer(sdp)
        assert self.to_server is not None
        await self.to_server({"type": "offer", "sdp": sdp, "track_labels": labels})

    async def start_publishing(self, label: str, sender_id: int) -> None:
        """Add a video track labelled `label` and re-offer, as a nurse turning on the exam camera."""
        track = MarkerVideoTrack(sender_id, *self._size)
        self.video_tracks.append(track)
        self.video_labels = (*self.video_labels, label)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        _prefer(transceiver, self._video_codec)
        aiortc_passthrough.restrict_gathering(self.pc, self._listen_ips, None)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._lose_on_transports()
        assert self.to_server is not None
        await self.to_server({"type": "offer", "sdp": self.pc.localDescription.sdp, "track_labels": {track.id: label}})

    async def stop_publishing(self, label: str) -> None:
        """Stop sending the video track labelled `label` and re-offer, as a client closing its exam camera."""
        track = self.video_tracks[self.video_labels.index(label)]
        transceiver = next(t for t in self.pc.getTransceivers() if t.sender.track is track)
        transceiver.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._lose_on_transports()
        assert self.to_server is not None
        await self.to_server({"type": "offer", "sdp": self.pc.localDescription.sdp})

    async def _run(self) -> None:
        while True:
            message = await self._inbox.get()
            self.messages.append(message)
            kind = message.get("type")
            try:
                if kind == "answer":
                    await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
                elif kind == "offer":
                    self.server_offers += 1
                    await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
                    self._read_stream_ids(message["sdp"])
                    aiortc_passthrough.restrict_gathering(self.pc, self._listen_ips, None)
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    self._lose_on_transports()
                    assert self.to_server is not None
                    await self.to_server({"type": "answer", "sdp": self.pc.localDescription.sdp})
                    self.answered_at = time.monotonic()
                elif kind == "participants":
                    self.participants = message["participants"]
                elif kind == "ended":
                    self.ended = message
            except Exception:
                log.exception("%s could not handle %s", self.name, kind)
            self._changed.set()

    def _lose_on_transports(self) -> None:
        if self.loss_in is not None:
            aiortc_passthrough.lose_rtp(self.pc, self.loss_in, outgoing=False)
        if self.loss_out is not None:
            aiortc_passthrough.lose_rtp(self.pc, self.loss_out, outgoing=True)

    def _read_stream_ids(self, sdp: str) -> None:
        """Which published track each m-line now carries: msid "<publisher participant id> <track id>".
        The server reuses a free m-line for a new track, so a changed msid starts a new record."""
        msids: dict[str, tuple[str, str]] = {}
        mid = None
        for line in sdp.splitlines():
            if line.startswith("m="):
                mid = None
            elif line.startswith("a=mid:"):
                mid = line[len("a=mid:"):].strip()
            elif line.startswith("a=msid:") and mid is not None:
                stream_id, track_id = line[len("a=msid:"):].split()[:2]
                msids[mid] = (stream_id, track_id)
        for mid, (stream_id, track_id) in msids.items():
            received = self.received.get(mid)
            if received is None:
                continue
            if received.stream_id is not None and received.track_id != track_id:
                self.received[mid] = ReceivedTrack(track_id=track_id, kind=received.kind, stream_id=stream_id)
            else:
                received.track_id, received.stream_id = track_id, stream_id

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid or track.id
        if track.kind == "video":  # a browser's behaviour on loss nobody repairs (see resync_on_keyframes)
            codec = aiortc_passthrough.negotiated_codec(transceiver)
            if codec is not None:
                aiortc_passthrough.resync_on_keyframes(transceiver.receiver,
                                                       keyframe_start_detector(codec.mimeType))
        self.received[mid] = ReceivedTrack(track_id=track.id, kind=track.kind)
        task = asyncio.create_task(self._consume(track, mid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, track: MediaStreamTrack, mid: str) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                received = self.received[mid]
                now = time.monotonic()
                if received.first_frame_at is None:
                    received.first_frame_at = now
                elif received.last_frame_at is not None and now - received.last_frame_at > received.GAP_S:
                    received.gaps.append((now, now - received.last_frame_at))
                received.last_frame_at = now
                received.frames += 1
                if not self._decode:
                    continue
                if isinstance(frame, av.VideoFrame):
                    received.markers.append(read_marker(frame))
                elif isinstance(frame, av.AudioFrame):
                    samples = frame.to_ndarray().astype(np.float32)
                    if samples.size and float(np.sqrt(np.mean(samples ** 2))) > 500:
                        received.loud_frames += 1

    def tracks_by_kind(self, kind: str) -> list[ReceivedTrack]:
        return [r for r in self.received.values() if r.kind == kind]

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + within_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: timed out waiting for {what or predicate}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()


def _prefer(transceiver: Any, mime: str) -> None:
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in (mime, f"{transceiver.kind}/rtx")])
