"""The SFU of one process: all consultations' media rooms. Created and closed by the application."""

from __future__ import annotations

import asyncio

from media.config import MediaConfig
from media.room import Room
from media.stats import SfuCounters


class Sfu:
    def __init__(self, config: MediaConfig | None = None) -> None:
        self.config = config or MediaConfig()
        self.counters = SfuCounters()
        self._rooms: dict[str, Room] = {}

    def room(self, consultation_id: str) -> Room:
        """The consultation's room, created on first use and forgotten when it closes or empties."""
        room = self._rooms.get(consultation_id)
        if room is None or room.closed:
            room = Room(consultation_id, self.config, self.counters, self._forget)
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
