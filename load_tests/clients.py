"""The one client module of the benchmarks and the tests.

- Media: an aiortc peer that publishes a VP8 clip and Opus encoded once at start-up (aiortc packs pre-encoded
  `av.Packet`s, so a load generator spends its CPU on RTP like the server, not on codecs) and counts what it
  receives without decoding; a sample of peers also decodes its video and reads the marker each clip frame
  carries (sender id, frame number, as `MarkerVideoTrack` draws them), proving frames arrive whole, in order
  and from the right sender. A keyframe request (PLI) restarts the clip at its keyframe, as a live encoder would.
- `SignalClient`: a participant on nettlege's signaling WebSocket (docs/protocol.md); `BareSignal`: the same
  offer/answer messages against `load_tests.media_server` (the transcoding relay).
- `ChatClient`: a Socket.IO chat participant that measures send -> ack and send -> deliver.
- `MediaClient` (tests): an aiortc participant whose video carries its frame counter and sender id as blocks in
  the top bands (`MarkerVideoTrack`, read back by `read_marker`) and whose audio is a sine tone, so a subscriber
  that decodes can tell whose frame it is and that frames arrive in order; it speaks the signaling protocol to a
  `media.Peer` directly or through `SignalClient`. It gathers on loopback only, like the server in tests.
Not shipped in the wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
import yarl
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack, VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import aiortc_passthrough
from media.config import MediaConfig
from media.ice import rtc_configuration
from media.rtp import keyframe_start_detector

# --- marked live media (tests) -------------------------------------------------------------------------

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
            prefer_codec(transceiver, self._video_codec)
            labels[track.id] = label
        if self.audio_track is not None:
            transceiver = self.pc.addTransceiver(self.audio_track, direction="sendonly")
            prefer_codec(transceiver, "audio/opus")
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
        prefer_codec(transceiver, self._video_codec)
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
                    for transceiver in self.pc.getTransceivers():  # a codec switch, as a browser follows it
                        if transceiver.sender.track is not None:
                            await aiortc_passthrough.follow_send_codec(transceiver)
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


VIDEO_CLOCK = 90000
RECEIVE_BUFFER = MediaConfig().udp_receive_buffer_bytes  # as the SFU's own sockets


# --- pre-encoded media ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    kind: str
    packets: list[bytes]
    rate: float  # packets per second
    step: int  # RTP clock units per packet
    time_base: fractions.Fraction
    bitrate: float


def encode_video_clip(sender_id: int = 1, width: int = 640, height: int = 480, fps: int = 30, seconds: int = 5,
                      bitrate: int = 800_000) -> Clip:
    """A moving band of noise on a flat picture (about the bit rate asked for at this size), with the frame number
    and `sender_id` drawn as blocks in the top bands. One keyframe, at the start: the clip restarts there."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(fps, 1)
    codec.time_base = fractions.Fraction(1, fps)
    codec.gop_size = fps * seconds
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}
    rng = np.random.default_rng(sender_id)
    y = np.full((height, width), 128, dtype=np.uint8)
    u = np.full((height // 2, width // 2), (sender_id * 37) % 256, dtype=np.uint8)
    v = np.full((height // 2, width // 2), (sender_id * 91) % 256, dtype=np.uint8)
    b = width // COUNTER_BITS
    packets: list[bytes] = []
    for i in range(fps * seconds):
        y[:] = 128
        band = 2 * b + (i * 8) % (height - 2 * b - 24)
        y[band:band + 24] = rng.integers(0, 256, size=(24, width), dtype=np.uint8)
        for bit in range(COUNTER_BITS):
            y[0:b, bit * b:(bit + 1) * b] = 255 if (i >> (COUNTER_BITS - 1 - bit)) & 1 else 0
        for bit in range(SENDER_BITS):
            y[b:2 * b, bit * b:(bit + 1) * b] = 255 if (sender_id >> (SENDER_BITS - 1 - bit)) & 1 else 0
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (y, u, v), strict=True):
            write_plane(plane, data)
        frame.pts, frame.time_base = i, codec.time_base
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    return Clip("video", packets, fps, VIDEO_CLOCK // fps, fractions.Fraction(1, VIDEO_CLOCK),
                8 * sum(map(len, packets)) / seconds)


def encode_audio_clip(seconds: int = 2) -> Clip:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48000, "mono", "s16", 32000
    packets: list[bytes] = []
    samples = 960
    for i in range(seconds * 50):
        t = (np.arange(samples) + i * samples) / 48000
        pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * samples, fractions.Fraction(1, 48000)
        packets += [bytes(p) for p in codec.encode(frame)]
    return Clip("audio", packets, 50, 960, fractions.Fraction(1, 48000), 8 * sum(map(len, packets)) / seconds)


class PreEncodedTrack(MediaStreamTrack):
    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.kind = clip.kind
        self._clip = clip
        self._position = 0
        self.sent = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self._position = 0

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self.sent / self._clip.rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._clip.packets[self._position])
        packet.pts, packet.time_base = self.sent * self._clip.step, self._clip.time_base
        self._position = (self._position + 1) % len(self._clip.packets)
        self.sent += 1
        return packet


@dataclass
class Reception:
    """What one participant received, over all its peer connections; `decode` reads markers from the video."""

    decode: bool = False
    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    bytes: int = 0
    first_video_at: float | None = None
    markers: list[tuple[int, int]] = field(default_factory=list)  # (sender id, frame number)
    undecodable: int = 0

    def attach(self, pc: RTCPeerConnection) -> None:
        pc.on("track", lambda track: self._on_track(pc, track))

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        kind = track.kind
        decoder = av.CodecContext.create("libvpx", "r") if self.decode and kind == "video" else None

        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            if kind == "video" and self.first_video_at is None:
                self.first_video_at = time.monotonic()
            self.frames[kind] += 1
            self.bytes += len(frame.data)
            if decoder is not None:
                try:
                    self.markers += [read_marker(f) for f in decoder.decode(av.Packet(frame.data))]
                except av.error.FFmpegError:
                    self.undecodable += 1

        aiortc_passthrough.install_receiver_sink(receiver, on_frame)

    def check_markers(self, since: int, sender_id: int, clip_frames: int) -> dict[str, int]:
        """Markers from index `since` on: each is the previous + 1 (or 0: the clip restarted at its keyframe,
        after a keyframe request or at its end) and carries the other participant's sender id."""
        window = self.markers[since:]
        counters = [c for _, c in window]
        skipped = sum(b != a + 1 and b != 0 for a, b in itertools.pairwise(counters))
        return {"decoded": len(window), "skipped_or_reordered": skipped,
                "wrong_sender": sum(s != sender_id for s, _ in window),
                "beyond_clip": sum(c >= clip_frames for c in counters)}


def prefer_codec(transceiver: Any, mime: str) -> None:
    """Offer only `mime` (and RTX) on this transceiver; "safari": H264 first, then VP8 (and RTX), as Safari (or
    Chromium told to prefer H264) offers."""
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    first = []
    if mime == "safari":
        first = [c for c in codecs if c.mimeType.lower() == "video/h264"]
        mime = "video/vp8"
    transceiver.setCodecPreferences(first + [c for c in codecs
                                             if c.mimeType.lower() in (mime, f"{transceiver.kind}/rtx")])


class PreEncodedMedia:
    """One aiortc peer connection that publishes the clips (unless `clips` is empty) and receives into
    `reception`. Speaks the `MediaClient` interface `SignalClient` drives (start, offer, deliver,
    close); `local_offer`/`local_answer` serve HTTP-API servers (Janus)."""

    def __init__(self, clips: list[Clip], reception: Reception, listen_ip: str = "127.0.0.1") -> None:
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.tracks = [PreEncodedTrack(c) for c in clips]
        self.reception = reception
        self.listen_ip = listen_ip
        self.to_server: Any = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        reception.attach(self.pc)

    def _restrict(self) -> None:
        aiortc_passthrough.restrict_gathering(self.pc, [self.listen_ip], None, RECEIVE_BUFFER)

    async def local_offer(self) -> str:
        labels = {}
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            prefer_codec(transceiver, "video/vp8" if track.kind == "video" else "audio/opus")
            aiortc_passthrough.on_keyframe_request_from_remote(transceiver.sender, track.request_keyframe)
            if track.kind == "video":
                labels[track.id] = "camera"
        self._labels = labels
        self._restrict()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def local_answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        self._restrict()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def remote_answer(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    # the MediaClient interface
    def start(self, to_server: Any) -> None:
        self.to_server = to_server
        self._runner = asyncio.create_task(self._run())

    async def offer(self) -> None:
        sdp = await self.local_offer()
        await self.to_server({"type": "offer", "sdp": sdp, "track_labels": self._labels})

    async def deliver(self, message: dict[str, Any]) -> None:
        self._inbox.put_nowait(message)

    async def _run(self) -> None:
        while True:
            message = await self._inbox.get()
            with contextlib.suppress(Exception):  # a late message for a closing peer
                if message["type"] == "answer":
                    await self.remote_answer(message["sdp"])
                elif message["type"] == "offer":
                    await self.to_server({"type": "answer", "sdp": await self.local_answer(message["sdp"])})

    async def rtp(self) -> dict[str, int]:
        """RTP packets this peer sent and received (and lost on the way in), from aiortc's stats."""
        out = {"sent": 0, "received": 0, "lost": 0}
        for report in (await self.pc.getStats()).values():
            if report.type == "outbound-rtp":
                out["sent"] += report.packetsSent
            elif report.type == "inbound-rtp":
                out["received"] += report.packetsReceived
                out["lost"] += max(report.packetsLost, 0)
        return out

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        await self.pc.close()


# --- signaling -----------------------------------------------------------------------------------------

class SignalClient:
    """A participant on nettlege's signaling WebSocket (docs/protocol.md) around a media client
    (`MediaClient` or `PreEncodedMedia`): hello/welcome, then offer/answer once admitted."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, consultation_id: str, token: str,
                 media: Any, display_name: str = "", signal_url: str | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.cid = consultation_id
        self.token = token
        self.media = media
        self.display_name = display_name
        self.signal_url = signal_url
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []  # every non-media server message, in order
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._reader: asyncio.Task[None] | None = None
        self._admitted = asyncio.Event()

    def ws_url(self) -> str:
        url = self.signal_url or f"/api/v1/consultations/{self.cid}/signal"
        if url.startswith("/"):
            url = self.base_url + url
        return url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)

    async def connect(self, offer: bool = True, origin: str | None = None) -> dict[str, Any]:
        """Open the WebSocket, say hello, and (once admitted) send the first offer. Returns `welcome`."""
        # The server requires an Origin (as a browser sends): by default that of a page served by the node we dial.
        own = yarl.URL(self.ws_url().replace("ws", "http", 1))
        headers = {"Origin": origin or f"{own.scheme}://{own.raw_authority}"}
        self.ws = await self.http.ws_connect(self.ws_url(), headers=headers, heartbeat=20)
        self.closed.clear()
        await self.ws.send_json({"type": "hello", "token": self.token, "display_name": self.display_name})
        first = await self.ws.receive_json(timeout=10)
        if first.get("type") != "welcome":
            self.events.append(first)
            raise ConnectionRefusedError(first.get("code", "no welcome"))
        self.welcome = first
        if first["state"] == "admitted":
            self._admitted.set()
        if self.media.to_server is None:
            self.media.start(self._send)
        self._reader = asyncio.create_task(self._read())
        if offer:
            await self._admitted.wait()
            await self.media.offer()
        return first

    async def wait_admitted(self, within_s: float = 10) -> None:
        await asyncio.wait_for(self._admitted.wait(), within_s)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_json(message)

    async def send(self, message: dict[str, Any]) -> None:
        await self._send(message)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("type") in ("answer", "offer", "participants", "ended"):
                    await self.media.deliver(data)
                if data.get("type") not in ("answer", "offer"):
                    self.events.append(data)
                if data.get("type") == "admitted":
                    self._admitted.set()
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def event_types(self) -> list[str]:
        return [e.get("type", "") for e in self.events]

    async def wait_event(self, kind: str, within_s: float = 10) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            for e in self.events:
                if e.get("type") == kind:
                    return e
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no {kind} event; got {self.event_types()}")
            await asyncio.sleep(0.02)

    async def leave(self) -> None:
        await self._send({"type": "leave"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 5)

    async def drop(self) -> None:
        """Lose the connection without saying goodbye (a phone changing networks)."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def close(self) -> None:
        await self.drop()
        await self.media.close()


class BareSignal:
    """`SignalClient`'s job against `load_tests.media_server`: the offer/answer messages, no hello, no REST."""

    def __init__(self, http: aiohttp.ClientSession, url: str, media: PreEncodedMedia) -> None:
        self.http, self.url, self.media = http, url, media
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0)

        async def send(message: dict[str, Any]) -> None:
            if self.ws is not None and not self.ws.closed:
                await self.ws.send_json(message)

        self.media.start(send)
        self._reader = asyncio.create_task(self._read())
        await self.media.offer()

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.media.deliver(json.loads(msg.data))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.send_json({"type": "leave"})
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        await self.media.close()


# --- chat ----------------------------------------------------------------------------------------------

class ChatClient:
    """A Socket.IO chat participant: `send` measures send -> ack; messages from the other side that this
    process sent (by text) count as delivered, timed from their send."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str, me: str, sent_at: dict[str, float],
                 on_delivered: Any) -> None:
        import socketio

        self.base, self.token, self.me = base, token, me
        self.sio = socketio.AsyncClient(reconnection=False, http_session=http)
        self._sent_at = sent_at
        self.sio.on("message", self._on_message)
        self._on_delivered = on_delivered

    def _on_message(self, m: dict[str, Any]) -> None:
        if m.get("sender", {}).get("role") == self.me:  # our own message echoed back
            return
        t0 = self._sent_at.pop(m.get("text", ""), None)
        if t0 is not None:
            self._on_delivered(m.get("text", ""), time.perf_counter() - t0)

    async def join(self, consultation_id: str, origin: str, timeout: float = 30) -> None:  # noqa: ASYNC109
        await self.sio.connect(self.base, auth={"token": self.token}, headers={"Origin": origin},
                               transports=["websocket"], wait_timeout=timeout)
        ack = await self.sio.call("join", {"consultation_id": consultation_id}, timeout=timeout * 2)
        if not ack.get("ok"):
            raise RuntimeError(f"chat join refused: {ack.get('error')}")

    async def send(self, consultation_id: str, client_id: str, text: str,
                   timeout: float = 30) -> tuple[dict[str, Any], float]:  # noqa: ASYNC109
        """Send a message; (ack, seconds to the ack)."""
        t = self._sent_at[text] = time.perf_counter()
        ack = await self.sio.call("message", {"consultation_id": consultation_id, "client_id": client_id,
                                              "text": text}, timeout=timeout)
        return ack, time.perf_counter() - t

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


# --- REST ----------------------------------------------------------------------------------------------

class Rest:
    """Timed REST calls: the latency of each successful answer under its operation (a 204, such as take-next on
    an empty queue, under "<op>_empty"); every answer counted by operation and status, so errors are counted,
    never timed."""

    def __init__(self, http: aiohttp.ClientSession, base: str = "") -> None:
        self.http, self.base = http, base
        self.latency: dict[str, list[float]] = {}
        self.statuses: dict[str, int] = {}

    def errors(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if not k.split()[-1].startswith("2")}

    async def queue_length(self, tenant: str, service: str) -> int | None:
        """Tickets waiting in one service's queue (public service list; not timed); None when the server did
        not answer (overloaded: that sample is lost, the run goes on)."""
        try:
            async with self.http.get(f"{self.base}/api/v1/services") as r:
                services = await r.json() if r.status == 200 else []
        except (aiohttp.ClientError, TimeoutError):
            services = []
        mine = [s["queue_length"] for s in services if s["tenant"] == tenant and s["service"] == service]
        return mine[0] if mine else None

    async def wait_in_queue(self, queue_path: str, token: str, body: dict[str, Any], *, poll_s: float, until: float,
                            on_joined: Callable[[str], None], first_poll_s: float | None = None) -> None:
        """A citizen: join the queue, then poll the ticket every `poll_s` (0: never; the first after
        `first_poll_s`, by default `poll_s`) until it is no longer waiting or time.monotonic() reaches `until`."""
        status, data = await self.call("join", "POST", queue_path, token, body)
        if status != 201:
            return
        ticket = data["ticket_id"]
        on_joined(ticket)
        wait = poll_s if first_poll_s is None else first_poll_s
        while poll_s > 0 and time.monotonic() < until:
            await asyncio.sleep(wait)
            wait = poll_s
            status, data = await self.call("poll", "GET", f"/api/v1/tickets/{ticket}", token)
            if status == 200 and data["state"] != "waiting":
                return

    async def take_loop(self, queue_path: str, token: str, *, until: float, retry_s: float,
                        consult: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """A clinician: take the next ticket, `consult(taken)`, end the consultation, and again until
        time.monotonic() reaches `until`; facing an empty queue (or an error) look again after `retry_s`."""
        while time.monotonic() < until:
            status, data = await self.call("take", "POST", f"{queue_path}/take", token)
            if status != 200:
                await asyncio.sleep(retry_s)
                continue
            await consult(data)
            await self.call("end", "POST", f"/api/v1/consultations/{data['consultation_id']}/end", token,
                            {"outcome": "resolved"})

    async def watch_queue(self, tenant: str, service: str, *, until: float, sample: Callable[[int], None],
                          every_s: float = 0.5) -> None:
        """`sample(tickets waiting)` every `every_s` until time.monotonic() reaches `until`."""
        while time.monotonic() < until:
            waiting = await self.queue_length(tenant, service)
            if waiting is not None:
                sample(waiting)
            await asyncio.sleep(every_s)

    async def call(self, op: str, method: str, path: str, token: str | None = None,
                   body: Any = None) -> tuple[int | str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        t0 = time.perf_counter()
        try:
            async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
                data = await r.json() if r.status in (200, 201) else await r.read()
                status: int | str = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, data = type(exc).__name__, None
        key = f"{op} {status}"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if status in (200, 201, 204):
            self.latency.setdefault(op if status != 204 else f"{op}_empty", []).append(time.perf_counter() - t0)
        return status, data
