"""Two server processes share one real Redis; the node holding a consultation's media is killed mid-call.

Clients resume video on the surviving node (pointed there by `signal_url`) and chat loses nothing:
messages sent while one side was cut off arrive on resync, once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import socketio

from load_tests.clients import MediaClient, SignalClient
from load_tests.harness import nettlege_server, redis_server

pytestmark = pytest.mark.media
ORIGIN = "http://pilot.example.test"
EXTRA = f'allowed_origins = ["{ORIGIN}"]\n'
# Short, so the test sees a dead node soon; 3 s, not less, so a live node held up on a busy machine between
# heartbeats (every timeout / 3) is not declared dead too.
NODE_ENV = {"NETTLEGE_NODE_TIMEOUT_S": "3"}


async def _until(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not within {within_s} s"
        await asyncio.sleep(0.1)


async def _token(http: aiohttp.ClientSession, base: str, sub: str, role: str) -> str:
    async with http.post(f"{base}/api/v1/dev/token", json={"sub": sub, "role": role, "tenant": "bench",
                                                           "name": sub}) as r:
        return (await r.json())["token"]


async def _signal_url(http: aiohttp.ClientSession, base: str, cid: str, token: str) -> str:
    async with http.get(f"{base}/api/v1/consultations/{cid}", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        url = (await r.json())["signal_url"]
    return base + url if url.startswith("/") else url


async def _chat(base: str, token: str, cid: str) -> tuple[socketio.AsyncClient, list[dict]]:
    sio = socketio.AsyncClient(reconnection=False)
    received: list[dict] = []
    sio.on("message", lambda m: received.append(m))
    await sio.connect(base, auth={"token": token}, headers={"Origin": ORIGIN}, transports=["websocket"],
                      wait_timeout=5)
    ack = await sio.call("join", {"consultation_id": cid}, timeout=5)
    assert ack["ok"], ack
    return sio, received


def _sees(client: SignalClient, sender_id: int, frames: int = 5) -> bool:
    return any(sum(1 for s, _ in r.markers if s == sender_id) >= frames
               for r in client.media.tracks_by_kind("video"))


async def test_killed_media_node_clients_resume_on_another_and_chat_loses_nothing():
    with redis_server() as redis_url, \
            nettlege_server(redis_url, EXTRA, NODE_ENV) as (node_a, proc_a), \
            nettlege_server(redis_url, EXTRA, NODE_ENV) as (node_b, proc_b):
        procs = {node_a: proc_a, node_b: proc_b}
        async with aiohttp.ClientSession() as http:
            citizen = await _token(http, node_a, "kari", "citizen")
            doctor = await _token(http, node_b, "dr-ola", "clinician")
            async with http.post(f"{node_a}/api/v1/tenants/bench/services/nettlege/queue",
                                 json={"channel": "video", "reason": "feber"},
                                 headers={"Authorization": f"Bearer {citizen}"}) as r:
                assert r.status == 201
            async with http.post(f"{node_b}/api/v1/tenants/bench/services/nettlege/queue/take",
                                 headers={"Authorization": f"Bearer {doctor}"}) as r:
                cid = (await r.json())["consultation_id"]

            # both nodes point clients at the same owner
            url_from_a = await _signal_url(http, node_a, cid, doctor)
            url_from_b = await _signal_url(http, node_b, cid, citizen)
            assert url_from_a == url_from_b
            owner = node_a if url_from_a.startswith(node_a) else node_b
            survivor = node_b if owner == node_a else node_a

            doc_media = SignalClient(http, owner, cid, doctor, MediaClient("doctor", sender_id=1), "Dr",
                                     signal_url=url_from_a)
            cit_media = SignalClient(http, owner, cid, citizen, MediaClient("citizen", sender_id=2), "Kari",
                                     signal_url=url_from_a)
            # the wrong node redirects a client that comes to it directly
            stray = SignalClient(http, survivor, cid, citizen, MediaClient("stray"), "Kari")
            with pytest.raises(ConnectionRefusedError, match="wrong_node"):
                await stray.connect()
            assert stray.events[0]["signal_url"] == url_from_a
            await stray.close()

            await doc_media.connect()
            await cit_media.connect()
            await doc_media.media.wait_for(lambda: _sees(doc_media, 2), 30, "citizen video before the kill")
            await cit_media.media.wait_for(lambda: _sees(cit_media, 1), 30, "doctor video before the kill")

            # chat: the doctor on the owner node, the citizen on the survivor
            doc_chat, doc_got = await _chat(owner, doctor, cid)
            cit_chat, _ = await _chat(survivor, citizen, cid)
            first = await cit_chat.call("message", {"consultation_id": cid, "client_id": uuid.uuid4().hex,
                                                    "text": "hei"}, timeout=5)
            async def delivered() -> bool:
                return bool(doc_got)

            await _until(delivered, 15, "the message across nodes")
            assert [m["text"] for m in doc_got] == ["hei"]

            os.kill(procs[owner].pid, signal.SIGKILL)
            await asyncio.wait_for(doc_media.closed.wait(), 10)
            await asyncio.wait_for(cit_media.closed.wait(), 10)
            with contextlib.suppress(Exception):
                await doc_chat.disconnect()
            # the citizen writes while the doctor is cut off
            sent = [await cit_chat.call("message", {"consultation_id": cid, "client_id": uuid.uuid4().hex,
                                                    "text": f"melding {i}"}, timeout=5) for i in range(5)]

            # clients ask the survivor where to go; once the dead node's heartbeat is stale, it is the survivor
            async def moved() -> bool:
                return (await _signal_url(http, survivor, cid, doctor)).startswith(survivor)

            await _until(moved, 30, "the consultation on the survivor")
            url = await _signal_url(http, survivor, cid, doctor)
            doc2 = SignalClient(http, survivor, cid, doctor, MediaClient("doctor2", sender_id=3), "Dr", signal_url=url)
            cit2 = SignalClient(http, survivor, cid, citizen, MediaClient("citizen2", sender_id=4), "Kari",
                                signal_url=url)
            await doc2.connect()
            await cit2.connect()
            await doc2.media.wait_for(lambda: _sees(doc2, 4), 30, "citizen video after failover")
            await cit2.media.wait_for(lambda: _sees(cit2, 3), 30, "doctor video after failover")

            # the doctor's chat resumes on the survivor and resyncs what it missed: all 5, once, in order
            doc_chat2, _ = await _chat(survivor, doctor, cid)
            missed = await doc_chat2.call("history", {"consultation_id": cid, "after_id": first["id"]}, timeout=5)
            assert [m["text"] for m in missed["messages"]] == [f"melding {i}" for i in range(5)]
            assert [m["id"] for m in missed["messages"]] == [s["id"] for s in sent]
            for c in (doc_chat2, cit_chat):
                await c.disconnect()
            for c in (doc_media, cit_media, doc2, cit2):
                await c.close()
