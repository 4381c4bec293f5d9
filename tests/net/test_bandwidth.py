"""Bandwidth adaptation on a real shaped link (issue 10): a subscriber in a network namespace behind a tbf
downlink of 120 kbit/s cannot carry video. The server pauses its video only (`quality` event), its audio goes
on, and when the shaping is removed a probe brings the video back.

The publisher is a live-encoding aiortc client with a voice-rate Opus (32 kbit/s, as browsers send) in the
root namespace; the subscriber runs inside the namespace (tests/net/client.py) and decodes what it gets.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from load_tests.clients import SignalClient
from load_tests.media_client import MediaClient
from signaling.signal_ws import SFU
from tests import netns
from tests.signal.conftest import take_consultation

pytestmark = [pytest.mark.media, pytest.mark.timeout(120)]

LINK_KBIT = 120
AUDIO_SHARE = 0.95  # of the audio frames the publisher sent, decoded while video is paused
VIDEO_BACK_S = 10.0  # after the probe is due (the server samples every `stats_interval_s`, 3 s)


class HeldClock:
    """The machine's clock until `hold()`; then it stands still until moved on, so the pause and its probe
    happen when the test says, not when a loaded machine happens to sample its stats."""

    def __init__(self) -> None:
        self.held: float | None = None

    def __call__(self) -> float:
        return time.monotonic() if self.held is None else self.held

    def hold(self) -> None:
        self.held = time.monotonic()


def _frames_from(client: Any, sender: int) -> list[dict[str, Any]]:
    return [e for e in client.of("frame") if e["sender"] == sender]


async def _audio_share(client: Any, after: float, seconds: float = 5.0) -> tuple[float, float, float, float]:
    """(decoded audio frames / 50 per second, share with the tone, window start, window end) over
    `seconds`, from the client's audio reports (one per 50 frames) after `after`."""
    await client.wait_for(lambda: [e for e in client.of("audio") if e["at"] > after], 10, "audio")
    start = next(e for e in client.of("audio") if e["at"] > after)
    await client.wait_for(lambda: [e for e in client.of("audio") if e["at"] > start["at"] + seconds],
                          seconds + 10, f"{seconds} s of audio")
    end = next(e for e in client.of("audio") if e["at"] > start["at"] + seconds)
    frames = end["frames"] - start["frames"]
    return frames / ((end["at"] - start["at"]) * 50), (end["loud"] - start["loud"]) / max(1, frames), \
        start["at"], end["at"]


def _quality(client: Any) -> list[dict[str, Any]]:
    return [e["message"] for e in client.of("server") if e["message"].get("type") == "quality"]


# Known bug (issue 10, left open): on a quiet machine the server never pauses this subscriber. The pause needs the
# subscriber to report >= 10 % video loss, but the server answers its NACKs with RTX, so the loss it reports stays
# low while tbf queues the overrun; frames keep trickling in and no `quality` event comes. It passed on a loaded
# machine (where the live encoder overshoots). Not strict, so a fix shows as XPASS; the pause itself is tested with
# real peers in tests/media/test_rtp_forwarding.py.
@pytest.mark.xfail(reason="issue 10: the overrun pause needs reported loss, which RTX hides on a tbf-shaped link",
                   strict=False)
async def test_a_subscriber_behind_120_kbit_gets_audio_without_video_and_video_back_when_the_link_recovers(
        served, namespace: netns.Namespace, net_client) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    base = str(served.make_url("/"))
    async with aiohttp.ClientSession() as http:
        doctor = SignalClient(http, base, cid, doctor_token,
                              MediaClient("doctor", sender_id=1, listen_ips=(namespace.host_ip,),
                                          audio_bitrate=32_000), "doctor")
        try:
            doctor_id = (await doctor.connect(origin=base.rstrip("/")))["participant_id"]
            citizen = net_client(cid, citizen_token)  # subscribes only, as a patient with the camera off
            await citizen.wait_for(lambda: len(_frames_from(citizen, 1)) >= 30, 20, "30 frames of the doctor")

            citizen_id = citizen.of("welcome")[0]["participant_id"]
            clock = HeldClock()
            served.app[SFU].room(cid).peer(citizen_id).bandwidth.clock = clock
            baseline = await _audio_share(citizen, after=time.monotonic())
            print(f"audio on the free link: {baseline[0]:.1%} of 50 frames/s")
            namespace.shape_down(LINK_KBIT)
            await citizen.wait_for(lambda: _quality(citizen), 30, "a quality event")
            assert _quality(citizen)[0] == {"type": "quality", "participant_id": doctor_id, "video": "paused",
                                            "reason": "bandwidth"}
            paused_at = time.monotonic()
            clock.hold()  # no probe until the link is restored

            # Audio while video is paused: what was queued on the link drains first, then measure.
            audio_share, loud_share, start_at, end_at = await _audio_share(citizen, after=paused_at + 2)
            frames_while_paused = [e for e in _frames_from(citizen, 1) if start_at < e["at"] <= end_at]
            print(f"audio while video paused: {audio_share:.1%} of 50 frames/s, {loud_share:.1%} with the tone; "
                  f"{len(frames_while_paused)} video frames")
            assert audio_share >= AUDIO_SHARE * baseline[0] and loud_share >= AUDIO_SHARE
            assert not frames_while_paused and len(_quality(citizen)) == 1

            namespace.unshape()
            unshaped_at = time.monotonic()
            clock.held += served.app[SFU].config.video_probe_after_s  # the probe is due
            await citizen.wait_for(lambda: len(_quality(citizen)) >= 2, 20, "video on again")
            assert _quality(citizen)[1]["video"] == "on"
            await citizen.wait_for(lambda: [e for e in _frames_from(citizen, 1) if e["at"] > unshaped_at], 20,
                                   "the doctor's picture again")
            back_s = next(e for e in _frames_from(citizen, 1) if e["at"] > unshaped_at)["at"] - unshaped_at
            print(f"video back {back_s:.2f} s after the shaping was removed")
            assert back_s < VIDEO_BACK_S
        finally:
            await doctor.close()
