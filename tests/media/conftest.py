"""Real aiortc peers on loopback against an in-process SFU; clients speak the signaling protocol directly
to `media.Peer`, as the WebSocket adapter will."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from media import MediaConfig, MediaError, Room, Sfu
from media.testing import MediaClient

MEDIA_CONFIG = MediaConfig(listen_ips=("127.0.0.1",), stats_interval_s=0.5)


async def connect(room: Room, client: MediaClient, role: str = "citizen", offer: bool = True) -> None:
    """Join `client` to `room` and send its first offer; server messages go to `client.deliver`."""
    peer = await room.join(client.name, role, client.name.title(), client.deliver)

    async def to_server(message: dict[str, Any]) -> None:
        try:
            if message["type"] == "offer":
                await peer.handle_offer(message["sdp"], message.get("track_labels"))
            elif message["type"] == "answer":
                await peer.handle_answer(message["sdp"])
        except MediaError as exc:
            await client.deliver(exc.as_event())

    client.start(to_server)
    if offer:
        await client.offer()


@pytest.fixture
async def sfu() -> AsyncIterator[Sfu]:
    sfu = Sfu(MEDIA_CONFIG)
    yield sfu
    await sfu.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., MediaClient]]:
    clients: list[MediaClient] = []

    def make(name: str, **kwargs: Any) -> MediaClient:
        client = MediaClient(name, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    gc.collect()


def video_from(client: MediaClient, publisher: str) -> list[Any]:
    return [r for r in client.tracks_by_kind("video") if r.stream_id == publisher]


def audio_from(client: MediaClient, publisher: str) -> list[Any]:
    return [r for r in client.tracks_by_kind("audio") if r.stream_id == publisher]


def has_picture(client: MediaClient, publisher: str, count: int = 1, frames: int = 10) -> Callable[[], bool]:
    def check() -> bool:
        tracks = video_from(client, publisher)
        return len(tracks) == count and all(len(t.markers) >= frames for t in tracks)
    return check
