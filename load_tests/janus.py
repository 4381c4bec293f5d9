"""Janus VideoRoom, the reference SFU `media_bench` measures nettlege against: a private `janus` process (Debian
package `janus`, installed by `make bench`) with only the VideoRoom plugin and the HTTP transport, and a client
for its HTTP API (sessions, handles, long-poll events) after aiortc's `examples/janus`.

libnice (Janus's ICE) gathers no loopback candidates, so Janus and its clients use this machine's first
non-loopback IPv4 address; the datagrams still never leave the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from .harness import free_port, stop, wait_port

PLUGINS = "/usr/lib/x86_64-linux-gnu/janus"


def host_ip() -> str:
    """The first non-loopback IPv4 address of this machine."""
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    raise RuntimeError("Janus needs a non-loopback IPv4 address (libnice gathers none on loopback)")


def _config(folder: Path, http_port: int, ip: str) -> None:
    (folder / "janus.jcfg").write_text(f"""
general: {{
  configs_folder = "{folder}"
  plugins_folder = "{PLUGINS}/plugins"
  transports_folder = "{PLUGINS}/transports"
  events_folder = "{PLUGINS}/events"
  loggers_folder = "{PLUGINS}/loggers"
  debug_level = 3
  admin_secret = "bench"
}}
media: {{ rtp_port_range = "40000-60000" }}
nat: {{ nice_debug = false, ice_enforce_list = "{ip}" }}
plugins: {{ disable = "libjanus_audiobridge.so,libjanus_echotest.so,libjanus_recordplay.so,libjanus_sip.so,\
libjanus_nosip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so,\
libjanus_lua.so,libjanus_duktape.so" }}
transports: {{ disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,\
libjanus_rabbitmq.so" }}
events: {{ broadcast = false }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""
general: {{ json = "compact", base_path = "/janus", http = true, port = {http_port}, ip = "127.0.0.1", https = false }}
admin: {{ admin_http = false }}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text('general: { string_ids = false }\n')


@contextlib.contextmanager
def janus_server(prefix: list[str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    """A private Janus (started with the command `prefix`, e.g. `taskset -c 0`); yields (HTTP API URL, process,
    media IP)."""
    binary = shutil.which("janus")
    if binary is None:
        raise RuntimeError("janus is not installed: `make bench` installs the Debian package")
    folder = Path(tempfile.mkdtemp(prefix="nettlege-janus-"))
    port, ip = free_port(), host_ip()
    _config(folder, port, ip)
    log = (folder / "janus.log").open("wb")
    proc = subprocess.Popen([*(prefix or []), binary, "--configs-folder", str(folder),
                             "--config", str(folder / "janus.jcfg"), "--disable-colors"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, 30)
        yield f"http://127.0.0.1:{port}/janus", proc, ip
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


_transactions = itertools.count(1)


class JanusHandle:
    """One plugin handle; `send` posts a message and waits for its asynchronous event."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session, self.id = session, handle_id
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                   timeout: float = 20) -> dict[str, Any]:  # noqa: ASYNC109
        message: dict[str, Any] = {"janus": "message", "transaction": str(next(_transactions)), "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        answer = await self.session.post(f"/{self.id}", message)
        if answer["janus"] == "success":  # synchronous requests (create, ...)
            return answer
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout)
            if event.get("transaction") == message["transaction"]:
                data = event.get("plugindata", {}).get("data", {})
                if "error" in data:
                    raise RuntimeError(f"janus: {data['error']}")
                return event


class JanusSession:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.session_url = ""
        self.handles: dict[int, JanusHandle] = {}
        self._poller: asyncio.Task[None] | None = None

    async def post(self, path: str, message: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.session_url + path, json=message) as r:
            answer = await r.json()
        if answer.get("janus") == "error":
            raise RuntimeError(f"janus: {answer['error']}")
        return answer

    async def create(self) -> None:
        async with self.http.post(self.url, json={"janus": "create", "transaction": str(next(_transactions))}) as r:
            self.session_url = f"{self.url}/{(await r.json())['data']['id']}"
        self._poller = asyncio.create_task(self._poll())

    async def attach(self) -> JanusHandle:
        answer = await self.post("", {"janus": "attach", "plugin": "janus.plugin.videoroom",
                                      "transaction": str(next(_transactions))})
        handle = JanusHandle(self, answer["data"]["id"])
        self.handles[handle.id] = handle
        return handle

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(self.session_url, params={"maxev": 10}) as r:
                    events = await r.json()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            for event in events if isinstance(events, list) else [events]:
                handle = self.handles.get(event.get("sender", 0))
                if handle is not None and event.get("janus") == "event":
                    handle.events.put_nowait(event)

    async def destroy(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        with contextlib.suppress(Exception):
            await self.post("", {"janus": "destroy", "transaction": str(next(_transactions))})


async def create_room(session: JanusSession, room: int, publishers: int = 2) -> None:
    handle = await session.attach()
    await handle.send({"request": "create", "room": room, "publishers": publishers, "videocodec": "vp8",
                       "audiocodec": "opus", "bitrate": 0, "is_private": True})
