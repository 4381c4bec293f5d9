"""The SFU of one process: all consultations' media rooms. Created and closed by the application."""

from __future__ import annotations

import asyncio
import dataclasses

from media.config import MediaConfig
from media.room import Room
from media.stats import SfuCounters


class Sfu:
    def __init__(self, config: MediaConfig | None = None) -> None:
        self.config = config or MediaConfig()
        self.counters = SfuCounters()
        self._rooms: dict[str, Room] = {}

    def room(self, consultation_id: str, max_video_bitrate_bps: int | None = None) -> Room:
        """The consultation's room, created on first use and forgotten when it closes or empties.
        `max_video_bitrate_bps`: its service's cap on what a publisher sends, instead of the process's;
        taken when the room is created."""
        room = self._rooms.get(consultation_id)
        if room is None or room.closed:
            config = self.config if max_video_bitrate_bps is None else dataclasses.replace(
                self.config, max_video_bitrate_bps=max_video_bitrate_bps)
            room = Room(consultation_id, config, self.counters, self._forget)
            self._rooms[consultation_id] = room
        return room

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.consultation_id) is room:
            del self._rooms[room.consultation_id]

    async def close(self) -> None:
        """Close every room and peer connection (application shutdown)."""
        await asyncio.gather(*(room.close() for room in list(self._rooms.values())))
        self._rooms.clear()
