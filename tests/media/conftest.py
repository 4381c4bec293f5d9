"""Real aiortc peers on loopback against an in-process SFU; clients speak the signaling protocol directly
to `media.Peer`, as the WebSocket adapter will."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from load_tests.clients import MediaClient
from media import MediaConfig, MediaError, Room, Sfu

# No pausing of video for weak links here (test_rtp_forwarding turns it on): on a loaded machine a starved
# aiortc client's estimate collapses with loss, as a weak link's does, and would pause the picture under test.
MEDIA_CONFIG = MediaConfig(listen_ips=("127.0.0.1",), stats_interval_s=0.5, pause_video_when_overrun=False)


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


# --- coturn ------------------------------------------------------------------------------------------

import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

TURN_SECRET = "nettlege-test-secret"


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A private coturn on 127.0.0.1 with TURN REST (shared secret) auth, TCP and UDP, no TLS."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not Path(binary).exists():
        pytest.skip("coturn (turnserver) is not installed")
    port = _free_port()
    log = tmp_path / "turnserver.log"
    process = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}", "--realm=nettlege", "--no-tls", "--no-dtls",
         "--no-cli", "--allow-loopback-peers", "--min-port=49152", "--max-port=65535",
         f"--log-file={log}", "--simple-log", f"--pidfile={tmp_path / 'turnserver.pid'}",
         f"--db={tmp_path / 'turndb'}", "--no-software-attribute", "--fingerprint"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"coturn did not start; see {log}") from None
            time.sleep(0.05)
    yield Coturn(port=port, secret=TURN_SECRET, log=log)
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
