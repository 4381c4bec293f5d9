"""Load-generator process for the video scenarios: 1:1 consultations of aiortc clients.

Driven by `common.LoadProcess` (one JSON command per line on stdin). Two ways in:
- `nettlege`: the real server. A citizen joins the queue, a clinician takes the ticket (REST), both open the
  signaling WebSocket at the consultation's `signal_url` (the owning node when several share Redis) with
  hello/welcome and the first offer, as docs/protocol.md says.
- `bare`: the baseline relay of `load_tests.media_server` (`/signal/{consultation}/{participant}`, the same
  offer/answer messages without hello).

Most clients send a VP8 clip and Opus that were encoded once at start-up (`load_tests.media_load`) and count
what they receive without decoding, so the load generator spends its CPU on RTP, like the server. One sample
consultation per process (`sample=true`) instead uses `media.testing.MediaClient`: live-encoded 320x240 marker
video, decoded on receipt, so that the markers prove frames arrive whole, in order and from the right sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from load_tests.media_load import Clip, PreEncodedTrack, encode_audio_clip, encode_video_clip
from load_tests.signal_client import SignalClient
from media import aiortc_passthrough
from media.ice import rtc_configuration
from media.testing import MediaClient

from .common import SERVICE, TENANT, dev_token, serve_commands


class PreEncodedMedia:
    """The `MediaClient` interface `SignalClient` drives, publishing a pre-encoded clip, receiving undecoded."""

    def __init__(self, video: Clip, audio: Clip) -> None:
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.tracks = [PreEncodedTrack(video), PreEncodedTrack(audio)]
        self.to_server: Any = None
        self.frames = {"audio": 0, "video": 0}
        self.bytes = 0
        self.first_video_at: float | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        kind = track.kind

        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            if kind == "video" and self.first_video_at is None:
                self.first_video_at = time.monotonic()
            self.frames[kind] += 1
            self.bytes += len(frame.data)

        aiortc_passthrough.install_receiver_sink(receiver, on_frame)

    async def deliver(self, message: dict[str, Any]) -> None:
        self._inbox.put_nowait(message)

    def start(self, to_server: Any) -> None:
        self.to_server = to_server
        self._runner = asyncio.create_task(self._run())

    async def offer(self) -> None:
        labels = {}
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            mime = "video/vp8" if track.kind == "video" else "audio/opus"
            codecs = RTCRtpSender.getCapabilities(track.kind).codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in (mime, f"{track.kind}/rtx")])
            aiortc_passthrough.on_keyframe_request_from_remote(transceiver.sender, track.request_keyframe)
            if track.kind == "video":
                labels[track.id] = "camera"
        aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.to_server({"type": "offer", "sdp": self.pc.localDescription.sdp, "track_labels": labels})

    async def _run(self) -> None:
        while True:
            message = await self._inbox.get()
            with contextlib.suppress(Exception):
                if message["type"] == "answer":
                    await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
                elif message["type"] == "offer":
                    await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
                    aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None)
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.to_server({"type": "answer", "sdp": self.pc.localDescription.sdp})

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        await self.pc.close()


async def inbound(pc: RTCPeerConnection) -> tuple[int, int]:
    received = lost = 0
    for report in (await pc.getStats()).values():
        if report.type == "inbound-rtp":
            received += report.packetsReceived
            lost += max(report.packetsLost, 0)
    return received, lost


class BareSignal:
    """`SignalClient`'s job against `load_tests.media_server`: no hello, no REST."""

    def __init__(self, http: aiohttp.ClientSession, url: str, media: Any) -> None:
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


class Participant:
    def __init__(self, consultation: int, role: str, media: Any, sample: bool, sender_id: int = 0) -> None:
        self.consultation, self.role, self.media, self.sample = consultation, role, media, sample
        self.sender_id = sender_id
        self.signal: Any = None
        self.joined_at = 0.0
        self.node = ""

    def first_video_at(self) -> float | None:
        if self.sample:
            tracks = self.media.tracks_by_kind("video")
            return tracks[0].first_frame_at if tracks and tracks[0].first_frame_at else None
        return self.media.first_video_at

    def video_frames(self) -> int:
        if self.sample:
            return sum(t.frames for t in self.media.tracks_by_kind("video"))
        return self.media.frames["video"]

    def markers(self) -> list[tuple[int, int]]:
        return [m for t in self.media.tracks_by_kind("video") for m in t.markers] if self.sample else []


class VideoLoad:
    def __init__(self) -> None:
        self.http: aiohttp.ClientSession | None = None
        self.video: Clip | None = None
        self.audio: Clip | None = None
        self.participants: list[Participant] = []
        self.count = 0
        self.run_id = f"{int(time.time())}"
        self.sender_ids = itertools.count(1)

    async def setup(self, width: int = 640, height: int = 480, kbps: int = 800) -> dict[str, Any]:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.video = encode_video_clip(width, height, bitrate=kbps * 1000)
        self.audio = encode_audio_clip()
        return {"video_kbps": round(self.video.bitrate / 1000), "audio_kbps": round(self.audio.bitrate / 1000),
                "size": [width, height], "fps": 30}

    def _media(self, sample: bool, sender_id: int) -> Any:
        if sample:
            return MediaClient(f"sample{sender_id}", sender_id=sender_id, size=(320, 240), decode=True)
        assert self.video is not None and self.audio is not None
        return PreEncodedMedia(self.video, self.audio)

    async def _one_nettlege(self, base: str, i: int, pair: list[Participant]) -> None:
        assert self.http is not None
        citizen_tok = dev_token(f"vcit-{self.run_id}-{i}", "citizen")
        doctor_tok = dev_token(f"vdr-{self.run_id}-{i}", "clinician")
        api = f"{base}/api/v1/tenants/{TENANT}/services/{SERVICE}/queue"
        async with self.http.post(api, json={"channel": "video", "reason": "last"},
                                  headers={"Authorization": f"Bearer {citizen_tok}"}) as r:
            r.raise_for_status()
        async with self.http.post(f"{api}/take", headers={"Authorization": f"Bearer {doctor_tok}"}) as r:
            r.raise_for_status()
            cid = (await r.json())["consultation_id"]
        async with self.http.get(f"{base}/api/v1/consultations/{cid}",
                                 headers={"Authorization": f"Bearer {doctor_tok}"}) as r:
            r.raise_for_status()
            signal_url = (await r.json())["signal_url"]
        node = signal_url.split("/api/")[0] or base
        for p, tok in zip(pair, (doctor_tok, citizen_tok), strict=True):
            p.signal = SignalClient(self.http, base, cid, tok, p.media, display_name=p.role, signal_url=signal_url)
            p.node = node
        t0 = time.monotonic()
        for p in pair:
            p.joined_at = t0
        await asyncio.gather(*(p.signal.connect() for p in pair))

    async def _one_bare(self, base: str, i: int, pair: list[Participant]) -> None:
        assert self.http is not None
        t0 = time.monotonic()
        for p in pair:
            p.signal = BareSignal(self.http, f"{base}/signal/c{self.run_id}-{i}/{p.role}", p.media)
            p.joined_at = t0
            p.node = base
        await asyncio.gather(*(p.signal.connect() for p in pair))

    async def add(self, base: str, n: int, mode: str = "nettlege", sample: bool = False, gap_s: float = 0.1,
                  wait_s: float = 5.0) -> dict[str, Any]:
        """Start `n` consultations one after another (`gap_s` apart), then wait for their first frames."""
        new: list[Participant] = []
        errors: list[str] = []
        for k in range(n):
            i = self.count
            self.count += 1
            is_sample = sample and k == 0
            ids = (next(self.sender_ids), next(self.sender_ids))
            pair = [Participant(i, role, self._media(is_sample, sid), is_sample, sid)
                    for role, sid in zip(("clinician", "citizen"), ids, strict=True)]
            try:
                join = self._one_nettlege if mode == "nettlege" else self._one_bare
                await asyncio.wait_for(join(base, i, pair), 20)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            new += pair
            self.participants += pair
            await asyncio.sleep(gap_s)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(p.first_video_at() is None for p in new):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # frames arrive in aiortc callbacks: polling is simpler than an event
        first = [p.first_video_at() - p.joined_at for p in new if p.first_video_at() is not None]
        nodes: dict[str, int] = {}
        for p in new[::2]:
            nodes[p.node] = nodes.get(p.node, 0) + 1
        return {"consultations": self.count, "first_frame_s": first,
                "no_picture": sum(p.first_video_at() is None for p in new), "errors": errors, "nodes": nodes}

    async def _snapshot(self) -> dict[str, Any]:
        stats = await asyncio.gather(*(inbound(p.media.pc) for p in self.participants))
        return {"at": time.monotonic(), "frames": [p.video_frames() for p in self.participants],
                "received": sum(r for r, _ in stats), "lost": sum(lost for _, lost in stats),
                "markers": [len(p.markers()) for p in self.participants]}

    async def measure(self, duration: float) -> dict[str, Any]:
        start = await self._snapshot()
        await asyncio.sleep(duration)
        end = await self._snapshot()
        elapsed = end["at"] - start["at"]
        fps = [(b - a) / elapsed for a, b in zip(start["frames"], end["frames"], strict=True)]
        received, lost = end["received"] - start["received"], end["lost"] - start["lost"]
        # Sample clients: markers in the window must be in order, from the other participant, without gaps.
        expected = got = out_of_order = wrong_sender = 0
        for p, m0 in zip(self.participants, start["markers"], strict=True):
            if not p.sample:
                continue
            other = next(q for q in self.participants if q.consultation == p.consultation and q is not p)
            window = p.markers()[m0:]
            if len(window) < 2:
                continue
            counters = [c for _, c in window]
            got += len(window)
            expected += (counters[-1] - counters[0]) % (1 << 16) + 1
            out_of_order += sum(b <= a for a, b in itertools.pairwise(counters))
            wrong_sender += sum(s != other.sender_id for s, _ in window)
        return {"duration": elapsed, "clients": len(fps), "fps_mean": sum(fps) / len(fps) if fps else None,
                "fps_min": min(fps) if fps else None, "clients_below_27fps": sum(f < 27 for f in fps),
                "packets_received": received, "packets_lost": lost,
                "sample": {"frames_expected": expected, "frames_decoded": got, "out_of_order": out_of_order,
                           "wrong_sender": wrong_sender}}

    async def close(self) -> dict[str, Any]:
        await asyncio.gather(*(p.signal.close() for p in self.participants if p.signal is not None),
                             return_exceptions=True)
        self.participants.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        return {"closed": True}


def main() -> None:
    load = VideoLoad()
    serve_commands({"setup": load.setup, "add": load.add, "measure": load.measure, "close": load.close})


if __name__ == "__main__":
    main()
