"""An aiortc participant run inside a network namespace (see tests/netns.py), speaking the real signaling
WebSocket; it prints one JSON object per line on stdout and takes commands as JSON lines on stdin.

    python -m tests.net.client --base-url http://198.51.100.1:8080 --cid C --token T --listen-ip 198.51.100.2

Printed: {"event": "welcome" | "frame" | "audio" | "gap" | "connection" | "server" | "reconnected" | "error", ...}
("gap": no frame decoded on a track for longer than ReceivedTrack.GAP_S);
every `at` is time.monotonic(), which is the same clock in every process of the machine.
Commands: {"cmd": "online", "listen_ip": "198.51.100.3"} is the browser's `online` event after a network
change: a new WebSocket with the session token and a new peer connection, as web_client/js/signaling.js
does; {"cmd": "quit"}. A peer connection that goes `failed` or `disconnected` reconnects the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp

from load_tests.clients import MediaClient, ReceivedTrack, SignalClient


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "at": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


class _Reporting(MediaClient):
    """A MediaClient that prints each decoded video frame's marker and every 50th audio frame, with the
    number of the peer connection (`pc`: 1, then 2 after the first reconnect, ...)."""

    generation = 0

    async def _consume(self, track: Any, mid: str) -> None:
        watcher = asyncio.create_task(self._watch(mid))
        try:
            await super()._consume(track, mid)
        finally:
            watcher.cancel()

    async def _watch(self, mid: str) -> None:
        seen_markers = seen_audio = seen_gaps = 0
        while True:
            await asyncio.sleep(0.01)
            received: ReceivedTrack = self.received[mid]
            for ended_at, seconds in received.gaps[seen_gaps:]:
                emit("gap", kind=received.kind, mid=mid, ended_at=ended_at, seconds=seconds, pc=self.generation)
            seen_gaps = len(received.gaps)
            for marker in received.markers[seen_markers:]:
                emit("frame", kind="video", mid=mid, sender=marker[0], counter=marker[1], pc=self.generation)
            seen_markers = len(received.markers)
            if received.kind == "audio" and received.frames // 50 > seen_audio:
                seen_audio = received.frames // 50
                emit("audio", mid=mid, frames=received.frames, loud=received.loud_frames, pc=self.generation)


class Participant:
    def __init__(self, args: argparse.Namespace, http: aiohttp.ClientSession) -> None:
        self.args = args
        self.http = http
        self.token = args.token
        self.listen_ip = args.listen_ip
        self.client: SignalClient | None = None
        self.reconnecting = False
        self.generation = 0
        self.tasks: set[asyncio.Future[None]] = set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _media(self) -> MediaClient:
        publish = self.args.publish
        media = _Reporting(self.args.name, sender_id=self.args.sender_id,
                           video_labels=("camera",) if publish else (), audio=publish,
                           listen_ips=(self.listen_ip,), video_codec=self.args.codec, loss_in=self.args.loss_in)
        self.generation += 1
        media.generation = self.generation

        @media.pc.on("connectionstatechange")
        def changed() -> None:
            state = media.pc.connectionState
            emit("connection", state=state)
            if state in ("failed", "disconnected") and self.client is not None and self.client.media is media:
                self._spawn(self.reconnect(self.listen_ip, reason=state))

        return media

    async def connect(self) -> None:
        self.client = SignalClient(self.http, self.args.base_url, self.args.cid, self.token, self._media(),
                                   self.args.name)
        welcome = await self.client.connect(origin=self.args.base_url)
        self.token = welcome.get("session_token") or self.token  # what the web client reconnects with
        emit("welcome", state=welcome["state"], participant_id=welcome.get("participant_id"))
        self._spawn(self._forward_events(self.client))

    async def _forward_events(self, client: SignalClient) -> None:
        sent = 0
        while not client.closed.is_set() or sent < len(client.events):
            for event in client.events[sent:]:
                emit("server", message=event)
            sent = len(client.events)
            await asyncio.sleep(0.02)

    async def reconnect(self, listen_ip: str, reason: str) -> None:
        if self.reconnecting:
            return
        self.reconnecting = True
        try:
            self.listen_ip = listen_ip
            old = self.client
            if old is not None:  # its socket may hang on a vanished address: close it on the side
                self._spawn(old.close())
            await self.connect()
            emit("reconnected", reason=reason, listen_ip=listen_ip, pc=self.generation)
        except Exception as exc:
            emit("error", message=f"reconnect failed: {exc!r}")
        finally:
            self.reconnecting = False


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--cid", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--listen-ip", required=True)
    parser.add_argument("--name", default="net-client")
    parser.add_argument("--sender-id", type=int, default=9)
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--codec", default="video/vp8")
    parser.add_argument("--loss-in", type=float, default=0.0, help="share of received RTP dropped (a lossy link)")
    args = parser.parse_args()
    async with aiohttp.ClientSession() as http:
        participant = Participant(args, http)
        await participant.connect()
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                           sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "online":
                await participant.reconnect(command.get("listen_ip", participant.listen_ip), reason="online")
            elif command["cmd"] == "quit":
                break
        if participant.client is not None:
            with contextlib.suppress(Exception):
                await participant.client.close()


if __name__ == "__main__":
    asyncio.run(main())
