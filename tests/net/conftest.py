"""Fixtures for media tests on real links: a network namespace per test (see tests/netns.py), the whole app
bound to the namespace's root-side address, and participants run inside the namespace (tests/net/client.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import MediaStreamTrack

from load_tests.clients import MediaClient, SignalClient
from rooms.store import connect
from signaling.app import build_app
from tests import netns
from tests.conftest import close_app
from tests.signal.conftest import take_consultation


@pytest.fixture
def namespace() -> Iterator[netns.Namespace]:
    """A fresh namespace with a veth pair to the root namespace; torn down after the test, also on failure.
    Fails (never skips) when namespaces cannot be made, e.g. without root."""
    with netns.namespace() as ns:
        yield ns


@pytest.fixture
async def served(namespace: netns.Namespace, make_config, redis_url, request) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app bound to the namespace's root-side address (`host` = that address, as `nettlege serve --host`), with
    a short drop grace; `@pytest.mark.app_config(key=value)` overrides more, as in tests/signal."""
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    with socket.socket() as s:
        s.bind((namespace.host_ip, 0))
        port = s.getsockname()[1]
    marker = request.node.get_closest_marker("app_config")
    overrides = {"signal_drop_grace_s": 0.5, **(marker.kwargs if marker else {})}
    config = make_config(host=namespace.host_ip, port=port, public_url=f"http://{namespace.host_ip}:{port}",
                         **overrides)
    client = TestClient(TestServer(build_app(config), host=namespace.host_ip, port=port))
    await client.start_server()
    yield client
    await close_app(client)


@pytest.fixture
async def net_client(served: TestClient, namespace: netns.Namespace) -> AsyncIterator[Callable[..., NetClient]]:
    """make(cid, token, *args) -> a participant inside the namespace talking to `served`; stopped before the
    app closes (an open WebSocket would hold up its shutdown)."""
    made: list[NetClient] = []

    def make(cid: str, token: str, *args: str, module: str = "tests.net.client") -> NetClient:
        base = str(served.make_url("/"))
        if module == "tests.net.client":
            args = ("--base-url", base, "--cid", cid, "--token", token, "--listen-ip", namespace.client_ip, *args)
        else:
            args = ("--url", base, "--cid", cid, "--token", token, *args)
        client = NetClient(namespace, *args, module=module)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


@dataclass
class Call:
    """A consultation taken by a doctor who is in the call: `citizen_token` is for the other participant."""

    cid: str
    citizen_token: str
    base: str  # the served app's URL
    doctor: SignalClient


@contextlib.asynccontextmanager
async def doctor_in_call(served: TestClient, namespace: netns.Namespace, *,
                         video_tracks: list[MediaStreamTrack] | None = None, **media: Any) -> AsyncIterator[Call]:
    """A consultation taken by a doctor whose aiortc client (sender id 1; `media`: more MediaClient options) runs in
    the root namespace on the namespace's host address, connected (hello/welcome, offer/answer) before this
    yields, and closed afterwards. `video_tracks` replace the client's marker camera before it connects."""
    cid, citizen_token, doctor_token = await take_consultation(served)
    base = str(served.make_url("/"))
    async with aiohttp.ClientSession() as http:
        doctor = SignalClient(http, base, cid, doctor_token,
                              MediaClient("doctor", sender_id=1, listen_ips=(namespace.host_ip,), **media), "doctor")
        if video_tracks is not None:
            doctor.media.video_tracks = video_tracks
        try:
            await doctor.connect(origin=base.rstrip("/"))
            yield Call(cid, citizen_token, base, doctor)
        finally:
            await doctor.close()


class NetClient:
    """tests/net/client.py running inside a namespace: its printed events, and commands to it."""

    def __init__(self, ns: netns.Namespace, *args: str, module: str = "tests.net.client") -> None:
        self.process = ns.spawn(module, *args)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "stdout", "line": line})

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.close()  # end of input: the client leaves (and closes its browser) by itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == kind]

    async def wait_for(self, predicate: Callable[[], Any], within_s: float, what: str) -> Any:
        deadline = time.monotonic() + within_s
        while not (result := predicate()):
            if self.process.poll() is not None:
                raise AssertionError(f"the client in the namespace exited ({self.process.returncode}) waiting "
                                     f"for {what}; events: {self.events[-10:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {within_s} s waiting for {what}; last: {self.events[-5:]}")
            await asyncio.sleep(0.02)
        return result
