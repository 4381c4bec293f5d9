"""The baseline the SFU is measured against: aiortc's default path, where `MediaRelay` hands decoded frames
to every subscriber's sender, which encodes them again (a decode and an encode per track and subscriber).

Same room/peer API and signaling as `media.Sfu` (1:1 and small rooms, no m-line reuse), so the same load
generator drives both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from media import aiortc_passthrough
from media.config import MediaConfig
from media.ice import rtc_configuration
from media.stats import SfuCounters

Send = Callable[[dict[str, Any]], Awaitable[None]]

RECEIVE_BUFFER = MediaConfig().udp_receive_buffer_bytes  # as the SFU's own sockets


class TranscodingPeer:
    def __init__(self, room: TranscodingRoom, participant_id: str, send: Send) -> None:
        self.participant_id = participant_id
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.tracks: list[MediaStreamTrack] = []
        self._room = room
        self._send = send
        self._lock = asyncio.Lock()
        self._answered = False
        self._outstanding = False
        self._pending: list[MediaStreamTrack] = []
        self._subscribed: set[MediaStreamTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self.pc.on("track", self.tracks.append)

    async def handle_offer(self, sdp: str, track_labels: dict[str, str] | None = None) -> str:
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None, RECEIVE_BUFFER)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self._send({"type": "answer", "sdp": self.pc.localDescription.sdp})
            self._answered = True
        self._room.published(self)
        self._schedule()
        return self.pc.localDescription.sdp

    async def handle_answer(self, sdp: str) -> None:
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            self._outstanding = False
        self._schedule()

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        pass

    def subscribe(self, track: MediaStreamTrack) -> None:
        if track in self._subscribed:
            return
        self._subscribed.add(track)
        self._pending.append(self._room.relay.subscribe(track, buffered=False))
        self._schedule()

    def _schedule(self) -> None:
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._negotiate())

    async def _negotiate(self) -> None:
        async with self._lock:
            if not self._answered or self._outstanding or not self._pending:
                return
            for track in self._pending:
                self.pc.addTransceiver(track, direction="sendonly")
            self._pending.clear()
            aiortc_passthrough.restrict_gathering(self.pc, ["127.0.0.1"], None, RECEIVE_BUFFER)
            await self.pc.setLocalDescription(await self.pc.createOffer())
            self._outstanding = True
            await self._send({"type": "offer", "sdp": self.pc.localDescription.sdp})


class TranscodingRoom:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self._peers: dict[str, TranscodingPeer] = {}

    async def join(self, participant_id: str, role: str, display_name: str, send: Send) -> TranscodingPeer:
        peer = TranscodingPeer(self, participant_id, send)
        self._peers[participant_id] = peer
        return peer

    def published(self, publisher: TranscodingPeer) -> None:
        for peer in self._peers.values():
            if peer is not publisher:
                for track in publisher.tracks:
                    peer.subscribe(track)
                for track in peer.tracks:
                    publisher.subscribe(track)

    def peer(self, participant_id: str) -> TranscodingPeer | None:
        return self._peers.get(participant_id)

    def peers(self) -> list[TranscodingPeer]:
        return list(self._peers.values())

    async def leave(self, participant_id: str) -> None:
        peer = self._peers.pop(participant_id, None)
        if peer is not None:
            await peer.pc.close()

    async def close(self, outcome: str | None = None) -> None:
        for participant_id in list(self._peers):
            await self.leave(participant_id)


class TranscodingSfu:
    def __init__(self) -> None:
        self.counters = SfuCounters()  # nothing counts forwarded packets here; kept for the same /stats
        self._rooms: dict[str, TranscodingRoom] = {}

    def room(self, consultation_id: str) -> TranscodingRoom:
        return self._rooms.setdefault(consultation_id, TranscodingRoom())

    def rooms(self) -> list[TranscodingRoom]:
        return list(self._rooms.values())

    async def close(self) -> None:
        for room in self._rooms.values():
            await room.close()
        self._rooms.clear()
