"""kill -9 of the Redis primary under load, with Sentinel: nothing acked is lost, everything resumes.

Primary + two replicas + three Sentinels (down-after 1 s), REDIS_MIN_REPLICAS_ACK=1. Two participants chat at
~5 messages/s each, resending unacked messages with the same client_id; ten tickets wait; a video consultation
runs. The primary is killed mid-stream.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from load_tests.clients import MediaClient, SignalClient
from signaling.app import build_app
from tests.chat.conftest import Client, base_url, connect, consultation
from tests.conftest import bearer, dev_token

from .conftest import failovers_seen, full_history, ha_config, in_thread, running, send_until_acked
from .topology import SentinelSet

pytestmark = pytest.mark.media

MESSAGES = 30  # per sender
KILL_AFTER = 10  # acked messages per sender before the kill
Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def chatter(client: Client, cid: str, who: str, acked: list[dict], halfway: asyncio.Event) -> None:
    for i in range(MESSAGES):
        ack = await send_until_acked(client, cid, f"{who} {i}", f"{who}-{i}", within_s=60)
        acked.append({"i": i, **ack})
        if i + 1 == KILL_AFTER:
            halfway.set()
        await asyncio.sleep(0.2)  # ~5 messages/s: the pace of a fast typist, not a window anything waits on


async def until_ok(probe, within_s: float, what: str):  # type: ignore[no-untyped-def]
    """The first success of `probe` within `within_s` (a bound on recovery, polled; not a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not back within {within_s} s of the kill")
        await asyncio.sleep(0.1)


def check_history(history: list[dict], acked: dict[str, list[dict]]) -> None:
    """Every acked message exactly once, each sender's in the order sent."""
    ids = Counter(m["id"] for m in history)
    for who, acks in acked.items():
        assert len(acks) == MESSAGES
        for ack in acks:
            assert ids[ack["id"]] == 1, (who, ack)
        texts = [m["text"] for m in history if m["text"].startswith(who + " ")]
        assert texts == [f"{who} {i}" for i in range(MESSAGES)]


async def queue_tickets(app: TestClient, n: int) -> list[str]:
    tickets = []
    for i in range(n):
        tok = await dev_token(app, f"venter-{i}", "citizen")
        r = await app.post(Q, json={"channel": "chat", "reason": "r"}, headers=bearer(tok))
        assert r.status == 201, await r.text()
        tickets.append((await r.json())["ticket_id"])
    return tickets


async def take_all(app: TestClient, doctor: str) -> list[str]:
    taken = []
    while True:
        r = await app.post(f"{Q}/take", headers=bearer(doctor))
        if r.status == 204:
            return taken
        assert r.status == 200, await r.text()
        taken.append((await r.json())["ticket_id"])


@pytest.mark.timeout(400)
async def test_failover_loses_no_acked_message_ticket_or_frame(sentinels: SentinelSet, config_file):  # type: ignore[no-untyped-def]
    config = ha_config(config_file, sentinels.env(), redis_min_replicas_ack=1, redis_wait_timeout_ms=2000,
                       signal_drop_grace_s=20)
    app = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await app.start_server()
    async with running(app), aiohttp.ClientSession() as http:
        pair = await consultation(app)
        url = base_url(app)
        doctor, citizen = await connect(url, pair.doctor), await connect(url, pair.citizen)
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        waiting = await queue_tickets(app, 10)

        # a video consultation with media flowing both ways before the kill
        vdoc = await dev_token(app, "video-lege", "clinician")
        vcit = await dev_token(app, "video-pasient", "citizen")
        r = await app.post("/api/v1/tenants/oslo/services/legevakt/queue", json={"channel": "video", "reason": "r"},
                           headers=bearer(vcit))
        assert r.status == 201, await r.text()
        r = await app.post("/api/v1/tenants/oslo/services/legevakt/queue/take", headers=bearer(vdoc))
        vcid = (await r.json())["consultation_id"]
        peers = [SignalClient(http, url, vcid, vdoc, MediaClient("doctor", sender_id=1), "Lege"),
                 SignalClient(http, url, vcid, vcit, MediaClient("citizen", sender_id=2), "Pasient")]
        for p in peers:
            await p.connect()

        def frames_from(p: SignalClient, sender: int) -> int:
            return max((len(t.markers) for t in p.media.tracks_by_kind("video")
                        if t.markers and t.markers[-1][0] == sender), default=0)
        await peers[0].media.wait_for(lambda: frames_from(peers[0], 2) >= 10, 20, "video from the citizen")
        await peers[1].media.wait_for(lambda: frames_from(peers[1], 1) >= 10, 20, "video from the doctor")

        acked: dict[str, list[dict]] = {"lege": [], "pasient": []}
        halves = [asyncio.Event(), asyncio.Event()]
        senders = [asyncio.create_task(chatter(doctor, pair.cid, "lege", acked["lege"], halves[0])),
                   asyncio.create_task(chatter(citizen, pair.cid, "pasient", acked["pasient"], halves[1]))]
        await asyncio.wait_for(asyncio.gather(*(h.wait() for h in halves)), 60)

        before = (frames_from(peers[0], 2), frames_from(peers[1], 1))
        victim = await in_thread(sentinels.kill_primary)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        acked_before_kill = {k: len(v) for k, v in acked.items()}

        # Media does not touch Redis per packet: it keeps flowing while there is no primary at all.
        await peers[0].media.wait_for(lambda: frames_from(peers[0], 2) >= before[0] + 30, 20, "video during failover")
        await peers[1].media.wait_for(lambda: frames_from(peers[1], 1) >= before[1] + 30, 20, "video during failover")

        # chat: a new message acked within 15 s of the kill (the senders keep resending meanwhile)
        async def chat_back() -> bool:
            return all(len(v) > acked_before_kill[k] for k, v in acked.items())
        await until_ok(chat_back, 15 - (loop.time() - killed_at), "chat")
        # REST: a change acked within 15 s of the kill
        probe_tok = await dev_token(app, "probe", "citizen")

        async def rest_probe() -> bool:
            r = await app.post("/api/v1/tenants/oslo/services/legevakt/queue", json={"channel": "chat", "reason": "r"},
                               headers=bearer(probe_tok))
            return r.status in (201, 409)  # 409: an earlier attempt got in (its ack was lost), also "works"
        await until_ok(rest_probe, 15 - (loop.time() - killed_at), "REST")

        await asyncio.wait_for(asyncio.gather(*senders), 120)
        new_primary = await in_thread(sentinels.wait_failover, victim.port)
        assert new_primary.port != victim.port

        # the ten tickets queued before the kill: each taken exactly once after it
        taken = await take_all(app, pair.doctor)
        assert Counter(taken) == Counter(waiting)

        check_history(await full_history(doctor, pair.cid), acked)
        check_history(await full_history(citizen, pair.cid), acked)
        assert (await app.get("/readyz")).status == 200
        metrics = await (await app.get("/metrics")).text()
        assert failovers_seen(metrics) >= 1
        for p in peers:
            assert not p.closed.is_set()
        for c in (doctor, citizen):
            await c.close()
