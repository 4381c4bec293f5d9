"""An aiortc participant that joins a consultation through the real signaling WebSocket.

Wraps `media.testing.MediaClient` (marker video, tone audio, decoding receiver) with the WebSocket
protocol of docs/protocol.md. Used by the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from media.testing import MediaClient


class SignalClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, consultation_id: str, token: str,
                 media: MediaClient, display_name: str = "", signal_url: str | None = None) -> None:
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
        headers = {"Origin": origin} if origin else None
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
