"""The subscriber bandwidth policy's loss- and delay-based parts (media/bandwidth.py): an outright overrun
pauses at once, the link's own loss and queue cap what is sent below a REMB that stays too high, and a report
showing the overrun is what the signaling liveness counts as hearing the client. The same policy on real
shaped links: tests/net/test_bandwidth.py, test_link_adaptation.py, test_chromium_bandwidth.py."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from media import bandwidth as policy
from media.bandwidth import Congestion, SubscriberBandwidth
from media.config import MediaConfig
from signaling.liveness import PING_INTERVAL_S, PONG_TIMEOUT_S, Liveness

CONFIG = MediaConfig()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def subscriber(clock: Clock) -> SubscriberBandwidth:
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    bandwidth.video_streams, bandwidth.audio_streams = 1, 1
    return bandwidth


def test_an_outright_overrun_pauses_within_a_quarter_second_a_milder_one_after_the_usual_wait() -> None:
    clock = Clock()
    flooded = subscriber(clock)
    # 1.2 Mbit/s offered into a link whose estimate fell to 50 kbit/s, 40 % lost.
    assert flooded.on_estimate(50_000, offered_video_bps=1_200_000, fraction_lost=0.4) is None
    clock.now += policy.SEVERE_PAUSE_AFTER_S / 2
    assert flooded.on_estimate(48_000, offered_video_bps=1_200_000, fraction_lost=0.4) is None
    clock.now += policy.SEVERE_PAUSE_AFTER_S / 2
    assert flooded.on_estimate(47_000, offered_video_bps=1_200_000, fraction_lost=0.4) is True

    clock = Clock()
    mild = subscriber(clock)  # the estimate not far under what is offered, 12 % lost: the usual wait
    assert mild.on_estimate(120_000, offered_video_bps=200_000, fraction_lost=0.12) is None
    clock.now += policy.SEVERE_PAUSE_AFTER_S
    assert mild.on_estimate(120_000, offered_video_bps=200_000, fraction_lost=0.12) is None
    clock.now += CONFIG.video_pause_after_s
    assert mild.on_estimate(120_000, offered_video_bps=200_000, fraction_lost=0.12) is True


def test_lasting_loss_caps_the_share_below_a_remb_that_stays_high_and_a_clean_link_lifts_the_cap() -> None:
    clock = Clock()
    bandwidth = subscriber(clock)
    remb = 630_000  # Chromium behind a 500 kbit/s tbf
    bandwidth.on_estimate(remb, offered_video_bps=450_000, congestion=Congestion(rtt_s=0.01))  # the least RTT
    from_remb = bandwidth.video_share_bps()
    assert from_remb == int(remb * CONFIG.estimate_headroom) - CONFIG.audio_allowance_bps
    assert bandwidth.capacity_bps is None

    # 20 % lost: what is sent (450 kbit/s video + the audio allowance) is cut by half the loss.
    bandwidth.on_estimate(remb, offered_video_bps=450_000, fraction_lost=0.2)
    assert bandwidth.capacity_bps == (450_000 + CONFIG.audio_allowance_bps) * 0.9
    first_cut = bandwidth.video_share_bps()
    assert first_cut is not None and first_cut < from_remb
    # The same receiver report seen again with the next REMB: no second cut within the interval.
    clock.now += policy.CAPACITY_DECREASE_INTERVAL_S / 2
    bandwidth.on_estimate(remb, offered_video_bps=450_000, fraction_lost=0.2)
    assert bandwidth.video_share_bps() == first_cut
    # A queue on the link (the round trip grown) cuts to 0.85 of it, a second after the first cut.
    clock.now += policy.CAPACITY_DECREASE_INTERVAL_S / 2
    bandwidth.on_estimate(remb, offered_video_bps=450_000, congestion=Congestion(rtt_s=0.08))
    assert bandwidth.capacity_bps == (450_000 + CONFIG.audio_allowance_bps) * 0.9 * policy.CAPACITY_DELAY_FACTOR
    assert not bandwidth.paused  # a capacity far above the pause threshold is no reason to pause

    # Clean reports: it grows 8 % a second and is dropped once it reaches the REMB.
    capped = bandwidth.capacity_bps
    clock.now += 1
    bandwidth.on_estimate(remb, offered_video_bps=400_000, congestion=Congestion(rtt_s=0.01))
    assert bandwidth.capacity_bps is not None and abs(bandwidth.capacity_bps - capped * 1.08) < 1
    for _ in range(10):
        clock.now += 1
        bandwidth.on_estimate(remb, offered_video_bps=400_000, congestion=Congestion(rtt_s=0.01))
    assert bandwidth.capacity_bps is None and bandwidth.video_share_bps() == from_remb


def test_a_pause_and_its_probe_forget_the_capacity_measured_before() -> None:
    clock = Clock()
    bandwidth = subscriber(clock)
    bandwidth.on_estimate(60_000, offered_video_bps=1_000_000, fraction_lost=0.5)
    assert bandwidth.capacity_bps is not None
    clock.now += CONFIG.video_pause_after_s
    assert bandwidth.on_estimate(60_000, offered_video_bps=1_000_000, fraction_lost=0.5) is True
    clock.now += CONFIG.video_probe_after_s
    assert bandwidth.probe() is False
    assert bandwidth.capacity_bps is None


def test_a_report_showing_the_link_overrun_is_noted_for_the_liveness_one_from_a_good_link_is_not() -> None:
    clock = Clock()
    good = subscriber(clock)
    good.on_estimate(2_000_000, offered_video_bps=800_000)
    good.on_estimate(900_000, offered_video_bps=0)  # nothing offered yet: nothing to overrun
    assert good.overrun_reported_at is None

    flooded = subscriber(clock)
    before = time.monotonic()
    flooded.on_estimate(60_000, offered_video_bps=1_000_000)  # the estimate fell under what is sent
    assert flooded.overrun_reported_at is not None and flooded.overrun_reported_at >= before
    lossy = subscriber(clock)
    lossy.on_estimate(2_000_000, offered_video_bps=800_000, fraction_lost=0.3)  # loss alone says it too
    assert lossy.overrun_reported_at is not None


async def test_the_liveness_counts_a_report_of_the_overrun_as_hearing_a_client_whose_pongs_are_held_up() -> None:
    """A real WebSocket whose client answers no ping (an aiohttp client answers them only while it reads, and
    this one never reads): while its media reports say its link is overrun, it is not silent; once they stop
    (the client is gone), it is."""
    reported: dict[str, float | None] = {"at": None}
    silent = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)

        async def on_silent() -> None:
            silent.set()

        async def nothing() -> None:
            return None

        liveness = Liveness(ws, 60.0, on_silent=on_silent, on_heard=nothing, on_gone=nothing,
                            heard_elsewhere=lambda: reported["at"])
        pinger = asyncio.create_task(liveness.run())
        async for _ in ws:
            liveness.heard()
        pinger.cancel()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(server.make_url("/ws")):
            held_until = time.monotonic() + 4 * PONG_TIMEOUT_S
            while time.monotonic() < held_until:  # a report every 0.1 s, as REMBs come while the link floods
                reported["at"] = time.monotonic()
                await asyncio.sleep(0.1)
            assert not silent.is_set()
            await asyncio.wait_for(silent.wait(), 10 * (PONG_TIMEOUT_S + PING_INTERVAL_S))
    finally:
        await server.close()
