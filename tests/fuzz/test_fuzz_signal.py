"""The signaling WebSocket under hostile frames, before and after `hello`: every answer is an `error` event
(then, for a fatal one, a 4xxx close), never `internal` or 1011, never an unhandled exception in the logs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from .conftest import ORIGIN, Live, examples
from .strategies import deep, json_values, objects, text

TYPES = ["hello", "offer", "answer", "candidate", "leave", "media_state", "dance", ""]
FIELDS = ["type", "token", "display_name", "sdp", "candidate", "track_labels", "audio_off", "video_off"]
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
CLEAN_CLOSES = {1000, 4400, 4401, 4403, 4404, 4408, 4409, 4410, 4421, 4429}


def frames() -> st.SearchStrategy[Any]:
    values = json_values([SDP, "candidate:1 1 UDP 1 127.0.0.1 9 typ host", "0"])
    message = st.builds(lambda kind, rest: {**rest, "type": kind}, st.sampled_from(TYPES) | text(),
                        objects(FIELDS[1:], values=values))
    candidate = st.builds(lambda c: {"type": "candidate", "candidate": c},
                          st.one_of(values, objects(["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"],
                                                    values=values)))
    raw = st.one_of(text(), st.sampled_from(['{"type": "offer", "sdp": "\\ud800"}', deep(20_000), "{" * 5000,
                                             '{"type": ' + deep(2000) + "}"]))
    return st.one_of(message, candidate, raw, st.binary(max_size=64))


async def _token(http: aiohttp.ClientSession, base: str, sub: str, role: str) -> str:
    async with http.post(f"{base}/api/v1/dev/token", json={"sub": sub, "role": role, "tenant": "oslo",
                                                           "name": f"Fuzz {sub}"}) as r:
        return (await r.json())["token"]


class Socket:
    """One signaling connection, reopened (with hello) whenever the server closed it."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.closes: list[int | None] = []
        self.errors: list[str] = []

    async def setup(self) -> None:
        self.http = aiohttp.ClientSession()  # made on the client loop
        base = self.live.base
        self.token = await _token(self.http, base, "fz-doc", "clinician")
        async with self.http.post(f"{base}/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                  headers={"Authorization": f"Bearer {self.token}"}) as r:
            self.cid = (await r.json())["id"]
        self.url = base.replace("http", "ws", 1) + f"/api/v1/consultations/{self.cid}/signal"

    async def open(self, hello: bool = True) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.url, headers={"Origin": ORIGIN}, max_msg_size=0)
        if hello:
            await ws.send_json({"type": "hello", "token": self.token})
            await self.drain(ws, until="welcome")
        return ws

    async def drain(self, ws: aiohttp.ClientWebSocketResponse, until: str | None = None, quiet_s: float = 0.03
                    ) -> None:
        """Read what the server says until it is quiet (or sent `until`), noting errors and closes."""
        while True:
            try:
                msg = await ws.receive(timeout=5 if until else quiet_s)
            except TimeoutError:
                return
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "error":
                    self.errors.append(data["code"])
                if until and data.get("type") == until:
                    return
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                self.closes.append(ws.close_code)
                return

    async def send(self, frame: Any, hello: bool) -> None:
        for _ in range(2):  # the server may have closed the socket (e.g. rate_limited) before we read the close
            if hello:
                ws = await self.open(hello=False)
            else:
                if self.ws is None or self.ws.closed:
                    self.ws = await self.open()
                ws = self.ws
            try:
                await self._write(ws, frame)
                break
            except ConnectionError:
                await self.drain(ws)  # note how it closed, then open a new one
                await ws.close()
        await self.drain(ws, quiet_s=0.5 if hello else 0.03)
        if hello:
            await ws.close()

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, frame: Any) -> None:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        elif isinstance(frame, str):  # a text frame is UTF-8: a lone surrogate can only come JSON-escaped
            await ws.send_str(frame.encode("utf-8", "backslashreplace").decode())
        else:
            await ws.send_str(json.dumps(frame))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


def _check(sock: Socket, live: Live) -> None:
    assert "internal" not in sock.errors, sock.errors
    assert set(sock.closes) <= CLEAN_CLOSES, sock.closes
    assert not live.crashes.records, live.crashes.describe()  # type: ignore[attr-defined]


def test_hostile_first_frames_get_an_error_and_a_clean_close(live: Live) -> None:
    sock = Socket(live)
    live.client.run(sock.setup())

    @examples(40)
    @given(frames())
    def check(frame: Any) -> None:
        live.client.run(sock.send(frame, hello=True))
        _check(sock, live)

    try:
        check()
    finally:
        live.client.run(sock.close())
    assert sock.errors  # it did get answers


def test_hostile_frames_after_hello_get_error_events(live: Live) -> None:
    sock = Socket(live)
    live.client.run(sock.setup())

    @examples(250)
    @given(frames())
    def check(frame: Any) -> None:
        live.client.run(sock.send(frame, hello=False))
        _check(sock, live)

    try:
        check()
        live.client.run(asyncio.sleep(0.2))
    finally:
        live.client.run(sock.close())
    _check(sock, live)
    assert sock.errors
