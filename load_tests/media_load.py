"""Load-generator process for `media_bench`: 1:1 consultations of aiortc clients over the signaling WebSocket.

Each client publishes VP8 640x480 (~800 kbps) and Opus. Both were encoded once at start-up and are sent as
they are (aiortc packs pre-encoded `av.Packet`s), and received media is counted without decoding: the load
generator spends its CPU on RTP like the server, not on codecs, so one core drives many consultations.
A keyframe request (PLI) from the server restarts the clip at its keyframe, as a live encoder would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import aiortc_passthrough
from media.config import MediaConfig
from media.ice import rtc_configuration
from media.testing import write_plane

VIDEO_CLOCK = 90000

RECEIVE_BUFFER = MediaConfig().udp_receive_buffer_bytes  # as the SFU's own sockets


@dataclass(frozen=True)
class Clip:
    kind: str
    packets: list[bytes]
    rate: float  # packets per second
    step: int  # RTP clock units per packet
    time_base: fractions.Fraction
    bitrate: float


def encode_video_clip(width: int = 640, height: int = 480, fps: int = 30, seconds: int = 5,
                      bitrate: int = 800_000) -> Clip:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(fps, 1)
    codec.time_base = fractions.Fraction(1, fps)
    codec.gop_size = fps * seconds
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}
    packets: list[bytes] = []
    rng = np.random.default_rng(1)
    y = np.full((height, width), 128, dtype=np.uint8)
    u = np.full((height // 2, width // 2), 90, dtype=np.uint8)
    v = np.full((height // 2, width // 2), 160, dtype=np.uint8)
    for i in range(fps * seconds):
        # A moving band of noise on a flat picture: about the bit rate asked for at this size.
        y[:] = 128
        band = (i * 8) % (height - 64)
        y[band:band + 24] = rng.integers(0, 256, size=(24, width), dtype=np.uint8)
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (y, u, v), strict=True):
            write_plane(plane, data)
        frame.pts = i
        frame.time_base = codec.time_base
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    total = sum(map(len, packets))
    return Clip("video", packets, fps, VIDEO_CLOCK // fps, fractions.Fraction(1, VIDEO_CLOCK),
                8 * total / seconds)


def encode_audio_clip(seconds: int = 2) -> Clip:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = 32000
    packets: list[bytes] = []
    samples = 960
    for i in range(seconds * 50):
        t = (np.arange(samples) + i * samples) / 48000
        pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * samples
        frame.time_base = fractions.Fraction(1, 48000)
        packets += [bytes(p) for p in codec.encode(frame)]
    total = sum(map(len, packets))
    return Clip("audio", packets, 50, 960, fractions.Fraction(1, 48000), 8 * total / seconds)


class PreEncodedTrack(MediaStreamTrack):
    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.kind = clip.kind
        self._clip = clip
        self._position = 0
        self._sent = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self._position = 0

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent / self._clip.rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._clip.packets[self._position])
        packet.pts = self._sent * self._clip.step
        packet.time_base = self._clip.time_base
        self._position = (self._position + 1) % len(self._clip.packets)
        self._sent += 1
        return packet


@dataclass
class Received:
    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    bytes: int = 0
    first_video_at: float | None = None


class LoadClient:
    def __init__(self, consultation: str, name: str, video: Clip, audio: Clip) -> None:
        self.consultation, self.name = consultation, name
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.tracks = [PreEncodedTrack(video), PreEncodedTrack(audio)]
        self.received = Received()
        self.joined_at: float | None = None
        self.errors: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        kind = track.kind

        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            if kind == "video" and self.received.first_video_at is None:
                self.received.first_video_at = time.monotonic()
            self.received.frames[kind] += 1
            self.received.bytes += len(frame.data)

        aiortc_passthrough.install_receiver_sink(receiver, on_frame)

    async def join(self, session: aiohttp.ClientSession, url: str) -> None:
        self.joined_at = time.monotonic()
        self._ws = await session.ws_connect(f"{url}/signal/{self.consultation}/{self.name}", max_msg_size=0)
        self._task = asyncio.create_task(self._read())
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            mime = "video/vp8" if track.kind == "video" else "audio/opus"
            codecs = RTCRtpSender.getCapabilities(track.kind).codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in (mime, f"{track.kind}/rtx")])
            aiortc_passthrough.on_keyframe_request_from_remote(transceiver.sender, track.request_keyframe)
        aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None, RECEIVE_BUFFER)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._ws.send_json({"type": "offer", "sdp": self.pc.localDescription.sdp})

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            data = json.loads(msg.data)
            if data["type"] == "answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
            elif data["type"] == "offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None, RECEIVE_BUFFER)
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self._ws.send_json({"type": "answer", "sdp": self.pc.localDescription.sdp})
            elif data["type"] == "error":
                self.errors.append(data)

    async def inbound(self) -> tuple[int, int]:
        received = lost = 0
        for report in (await self.pc.getStats()).values():
            if report.type == "inbound-rtp":
                received += report.packetsReceived
                lost += max(report.packetsLost, 0)
        return received, lost

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send_json({"type": "leave"})
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()


async def snapshot(clients: list[LoadClient]) -> dict[str, Any]:
    at = time.monotonic()
    inbound = await asyncio.gather(*(c.inbound() for c in clients))
    return {
        "at": at,
        "video_frames": sum(c.received.frames["video"] for c in clients),
        "published_video_frames": sum(t._sent for c in clients for t in c.tracks if t.kind == "video"),
        "audio_frames": sum(c.received.frames["audio"] for c in clients),
        "bytes": sum(c.received.bytes for c in clients),
        "packets_received": sum(r for r, _ in inbound),
        "packets_lost": sum(lost for _, lost in inbound),
    }


async def run(url: str, consultations: int, prefix: str, measure_at: float, duration: float) -> dict[str, Any]:
    video, audio = encode_video_clip(), encode_audio_clip()
    clients: list[LoadClient] = []
    async with aiohttp.ClientSession() as session:
        for i in range(consultations):
            pair = [LoadClient(f"{prefix}-{i}", name, video, audio) for name in ("clinician", "citizen")]
            clients += pair
            await asyncio.gather(*(c.join(session, url) for c in pair))
            await asyncio.sleep(0.05)  # consultations arrive one after another, not in one instant
        await asyncio.sleep(max(0.0, measure_at - time.time()))
        start = await snapshot(clients)
        await asyncio.sleep(duration)
        end = await snapshot(clients)
        first_frames = []
        for i in range(0, len(clients), 2):
            pair = clients[i:i + 2]
            both_joined = max(c.joined_at or 0.0 for c in pair)
            first_frames += [c.received.first_video_at - both_joined for c in pair
                             if c.received.first_video_at is not None]
        result = {
            "clients": len(clients),
            "first_frame_s": first_frames,
            "no_picture": sum(c.received.first_video_at is None for c in clients),
            "errors": sum(len(c.errors) for c in clients),
            "duration": end["at"] - start["at"],
            "published_video_kbps": video.bitrate / 1000,
            **{k: end[k] - start[k] for k in end if k != "at"},
        }
        await asyncio.gather(*(c.close() for c in clients))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--consultations", type=int, required=True)
    parser.add_argument("--prefix", default="c")
    parser.add_argument("--measure-at", type=float, required=True, help="epoch seconds")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.consultations, args.prefix, args.measure_at, args.duration))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
