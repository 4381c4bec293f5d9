"""A service's own cap on what its publishers send (issue 10: "capped per service"): the tenant config's
`max_video_bitrate_bps` of a consultation's service replaces the process's default in the REMB its
publishers are told, and a live-encoding publisher's encoder follows it. Real app, real aiortc peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from load_tests.clients import MediaClient, SignalClient
from media.aiortc_passthrough import encoder_target_bitrate, on_remb_received
from media.config import MediaConfig
from rooms.store import connect
from signaling.app import build_app
from signaling.config import ConfigError
from tests.conftest import bearer, close_app, dev_token

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]

CAP = 300_000
DEFAULT_CAP = MediaConfig().max_video_bitrate_bps
OPEN = {"default": "24/7"}
TENANTS = [{"id": "oslo", "name": "Oslo kommune", "services": [
    {"id": "nettlege", "name": "Kommunal nettlege", "opening_hours": OPEN, "max_video_bitrate_bps": CAP},
    {"id": "legevakt", "name": "Legevakt", "opening_hours": OPEN}]}]


@pytest.fixture
async def live(make_config: Any, redis_url: str) -> AsyncIterator[TestClient]:
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    client = TestClient(TestServer(build_app(make_config(tenants=TENANTS)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await close_app(client)


async def _consultation(live: TestClient, service: str, citizen: str) -> tuple[str, str, str]:
    ct = await dev_token(live, citizen, "citizen")
    dt = await dev_token(live, f"dr-{citizen}", "clinician")
    r = await live.post(f"/api/v1/tenants/oslo/services/{service}/queue", json={"channel": "video", "reason": "r"},
                        headers=bearer(ct))
    assert r.status == 201, await r.text()
    r = await live.post(f"/api/v1/tenants/oslo/services/{service}/queue/take", headers=bearer(dt))
    assert r.status == 200, await r.text()
    return (await r.json())["consultation_id"], ct, dt


def _video_sender(client: MediaClient) -> Any:
    return next(t.sender for t in client.pc.getTransceivers() if t.kind == "video" and t.sender.track)


async def _told(told: list[int], count: int, within_s: float = 20) -> list[int]:
    for _ in range(int(within_s / 0.05)):
        if len(told) >= count:
            return told
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{len(told)} REMBs at the publisher in {within_s} s, wanted {count}")


async def test_a_services_cap_is_what_its_publishers_are_told_and_other_services_keep_the_default(
        live: TestClient) -> None:
    base = str(live.make_url("/")).rstrip("/")
    capped, citizen_token, capped_doctor = await _consultation(live, "nettlege", "kari")
    default, _, default_doctor = await _consultation(live, "legevakt", "per")
    async with aiohttp.ClientSession() as http:
        clients = [
            SignalClient(http, base, capped, capped_doctor, MediaClient("doctor", sender_id=1, scene=True), "d1"),
            SignalClient(http, base, capped, citizen_token,
                         MediaClient("kari", sender_id=2, video_labels=(), audio=False), "kari"),
            SignalClient(http, base, default, default_doctor, MediaClient("other", sender_id=3, scene=True), "d2"),
        ]
        try:
            told: dict[str, list[int]] = {}
            for client in clients:
                await client.connect(origin=base)
                if client.media.video_tracks:
                    await client.media.wait_for(lambda c=client: _video_sender(c.media).transport is not None)
                    on_remb_received(_video_sender(client.media), told.setdefault(client.cid, []).append)
            subscriber = clients[1].media
            await subscriber.wait_for(lambda: any(len(r.markers) >= 60 for r in subscriber.received.values()),
                                      20, "two seconds of the capped doctor's picture")

            capped_told = await _told(told[capped], 6)
            default_told = await _told(told[default], 6)
            print(f"REMB to the capped service's publisher: {capped_told[-6:]}; to the other: {default_told[-6:]}")
            # Its service's cap (until estimates say less), never more, subscriber or not.
            assert CAP in capped_told and max(capped_told) <= CAP
            # A publisher alone in another service: the process's default (later less if the server's estimate
            # of its uplink says so; on a starved machine that can be anything).
            assert max(default_told) == DEFAULT_CAP
            target = encoder_target_bitrate(_video_sender(clients[0].media))
            assert target is not None and target <= CAP  # the live encoder follows its service's cap
            [video] = [r for r in subscriber.received.values() if r.kind == "video"]
            assert {s for s, _ in video.markers} == {1} and video.counters_in_order()
        finally:
            for client in reversed(clients):
                await client.close()


def test_a_service_cap_below_what_video_needs_is_refused(make_config: Any) -> None:
    services = [{"id": "nettlege", "name": "N", "max_video_bitrate_bps": 100_000}]
    with pytest.raises(ConfigError, match="max_video_bitrate_bps"):
        make_config(tenants=[{"id": "oslo", "name": "Oslo", "services": services}])
