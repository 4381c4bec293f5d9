"""A consultation's media: who is connected, and every participant subscribed to every other's tracks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from media.config import MediaConfig
from media.errors import MediaError
from media.peer import Peer, Send
from media.publisher import PublishedTrack
from media.stats import SfuCounters

log = logging.getLogger(__name__)


class Room:
    """Created by `Sfu.room`; one per consultation."""

    def __init__(self, consultation_id: str, config: MediaConfig, counters: SfuCounters,
                 on_closed: Callable[[Room], None]) -> None:
        self.consultation_id = consultation_id
        self._config = config
        self._counters = counters
        self._on_closed = on_closed
        self._peers: dict[str, Peer] = {}
        self._stats_task: asyncio.Task[None] | None = None
        # Set by signaling, shown to everyone in `participants`: a dropped connection's grace period
        # (participant id → loop time it ends) and what a participant has switched off itself.
        self._dropped_until: dict[str, float] = {}
        self._media_off: dict[str, dict[str, bool]] = {}
        self.closed = False

    def _h264_everywhere(self) -> bool:
        """Whether every participant decodes H264, so a publisher may send it (forwarded as it comes)."""
        return all(peer.decodes_h264 is not False for peer in self._peers.values())

    async def _switch_to_vp8(self, peer: Peer) -> None:
        """`peer` cannot decode H264 (a late joiner: Firefox without OpenH264, a client offering VP8 only)
        while others may be publishing it: each H264 publisher that also offered VP8 is offered VP8 only
        (`Peer.use_vp8`). Until it has answered, the others keep receiving its H264 and `peer` nothing of it
        (audio goes on); then every subscriber is bound to the VP8 track (`_tracks_changed`). The room stays
        on VP8 after `peer` leaves. A publisher that offered H264 only goes on in H264, which `peer` declines."""
        for other in list(self._peers.values()):
            if other is peer:
                continue
            for track in other.use_vp8():
                peer.unsubscribe(track)

    async def join(self, participant_id: str, role: str, display_name: str, send: Send) -> Peer:
        """A participant's new peer connection. `send` delivers signaling messages (the server's `answer`
        and `offer`, `participants`, `ended`) to that participant's WebSocket. Joining again with the same
        participant id replaces the old connection (a phone moving from Wi-Fi to 4G)."""
        if self.closed:
            raise MediaError("consultation_ended", "This consultation has ended.")
        old = self._peers.pop(participant_id, None)
        self._dropped_until.pop(participant_id, None)
        if old is not None:
            await self._remove(old)
        elif len(self._peers) >= self._config.max_participants:
            raise MediaError("room_full", f"A consultation has at most {self._config.max_participants} "
                             "participants with video.")
        peer = Peer(participant_id=participant_id, role=role, display_name=display_name, send=send,
                    config=self._config, counters=self._counters, on_tracks_changed=self._tracks_changed)
        peer.h264_everywhere = self._h264_everywhere
        peer.lacks_h264 = self._switch_to_vp8
        self._peers[participant_id] = peer
        for other in self._peers.values():
            if other is not peer:
                for track in other.published.values():
                    peer.subscribe(track)
        if self._stats_task is None:
            self._stats_task = asyncio.create_task(self._sample_stats())
        await self._broadcast_participants()
        return peer

    async def leave(self, participant_id: str) -> None:
        peer = self._peers.pop(participant_id, None)
        self._dropped_until.pop(participant_id, None)
        self._media_off.pop(participant_id, None)
        if peer is None:
            return
        await self._remove(peer)
        await self._broadcast_participants()
        if not self._peers:
            await self.close()

    async def close(self) -> None:
        """Close every peer connection (the room emptied, or shutdown); the signaling layer tells clients
        the consultation ended, not the media room."""
        if self.closed:
            return
        self.closed = True
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
        peers, self._peers = list(self._peers.values()), {}
        await asyncio.gather(*(p.close() for p in peers))
        self._on_closed(self)

    def participants(self) -> list[dict[str, Any]]:
        """`[{"id", "role", "display_name", "tracks": [{"id", "kind", "label"}], "stats": {...},
        "presence": "connected"|"reconnecting", "grace_s"?: seconds left, "audio_off", "video_off"}]`"""
        now = asyncio.get_running_loop().time() if self._dropped_until else 0.0
        out = []
        for pid, peer in self._peers.items():
            d = peer.describe()
            off = self._media_off.get(pid, {})
            d.update(presence="connected", audio_off=off.get("audio", False), video_off=off.get("video", False))
            if pid in self._dropped_until:
                d.update(presence="reconnecting", grace_s=max(0, round(self._dropped_until[pid] - now)))
            out.append(d)
        return out

    async def dropped(self, participant_id: str, grace_s: float) -> None:
        """The participant's connection is gone; its place is kept for `grace_s` (others see a countdown)."""
        if participant_id in self._peers:
            self._dropped_until[participant_id] = asyncio.get_running_loop().time() + grace_s
            await self._broadcast_participants()

    async def present(self, participant_id: str) -> None:
        """The participant's connection is heard from again before its grace period ended: "connected"."""
        if self._dropped_until.pop(participant_id, None) is not None:
            await self._broadcast_participants()

    async def set_media_off(self, participant_id: str, *, audio: bool, video: bool) -> None:
        """The participant muted its microphone or turned its camera off (others see it on the tile)."""
        if participant_id in self._peers and self._media_off.get(participant_id) != {"audio": audio, "video": video}:
            self._media_off[participant_id] = {"audio": audio, "video": video}
            await self._broadcast_participants()

    def peer(self, participant_id: str) -> Peer | None:
        return self._peers.get(participant_id)

    def peers(self) -> list[Peer]:
        return list(self._peers.values())

    async def _remove(self, peer: Peer) -> None:
        published = await peer.close()
        for other in self._peers.values():
            for track in published:
                other.unsubscribe(track)

    async def _tracks_changed(self, peer: Peer, added: list[PublishedTrack],
                              removed: list[PublishedTrack]) -> None:
        for other in self._peers.values():
            if other is peer:
                continue
            for track in removed:
                other.unsubscribe(track)
            for track in added:
                other.subscribe(track)
        await self._broadcast_participants()

    async def _broadcast_participants(self) -> None:
        message = {"type": "participants", "participants": self.participants()}
        await asyncio.gather(*(p._send(message) for p in list(self._peers.values())))

    async def _sample_stats(self) -> None:
        while True:
            await asyncio.sleep(self._config.stats_interval_s)
            try:
                await asyncio.gather(*(p.sample_stats() for p in list(self._peers.values())))
            except Exception:
                log.exception("stats sampling failed in %s", self.consultation_id)
            if len(self._peers) > 1:
                await self._broadcast_participants()
