"""A late joiner without H264 against a real browser that prefers H264 (issue 10, "browsers beyond Chromium").

Headless Chromium in a network namespace runs the server's own web client and publishes a marker camera with
H264 first in its codec preferences (setCodecPreferences, as Safari offers), so the SFU takes H264. Then an
aiortc client that offers (and decodes) VP8 only joins, as Firefox without OpenH264 would: the server offers
Chromium its video m-line again with VP8 only, Chromium's encoder follows (getStats: outbound-rtp codec), and
the late joiner decodes Chromium's markers.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from load_tests.clients import MediaClient, SignalClient
from signaling.signal_ws import SFU
from tests import netns
from tests.net.chromium import Participant, chromium_in, until
from tests.signal.conftest import take_consultation

pytestmark = [pytest.mark.media, pytest.mark.timeout(150)]

CHROMIUM_SENDER = 5


def _published_video_codecs(served: Any, cid: str) -> list[str]:
    room = served.app[SFU].room(cid)
    return [t.codec.mimeType.lower() for p in room.peers() for t in p.published.values()
            if t.kind == "video" and t.codec is not None]


async def test_chromium_preferring_h264_switches_to_vp8_when_a_participant_without_h264_joins(
        served, namespace: netns.Namespace) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    base = str(served.make_url("/"))
    async with aiohttp.ClientSession() as http, chromium_in(namespace) as browser:
        chromium = await Participant.join(browser, base, cid, citizen_token, publish_sender=CHROMIUM_SENDER,
                                          prefer_h264=True)

        async def sends(codec: str) -> bool:
            return await chromium.sent_video_codec() == codec

        await until(lambda: sends("video/H264"), 60, "Chromium sending H264")
        assert _published_video_codecs(served, cid) == ["video/h264"]

        late = MediaClient("doctor", sender_id=1, listen_ips=(namespace.host_ip,))  # offers VP8 only
        doctor = SignalClient(http, base, cid, doctor_token, late, "doctor")
        try:
            await doctor.connect(origin=base.rstrip("/"))

            def chromium_pictures() -> list[Any]:
                return [r for r in late.tracks_by_kind("video") if r.markers]

            await late.wait_for(lambda: any(len(r.markers) >= 30 for r in chromium_pictures()), 60,
                                "Chromium's picture at the late joiner")
            # What the late joiner decoded is Chromium's camera: its sender id, counters moving on.
            [picture] = chromium_pictures()
            assert {s for s, _ in picture.markers} == {CHROMIUM_SENDER}, picture.markers[:10]
            assert picture.counters_in_order()
            # Chromium's encoder now sends VP8, and the SFU forwards VP8.
            await until(lambda: sends("video/VP8"), 20, "Chromium sending VP8")
            assert _published_video_codecs(served, cid) == ["video/vp8", "video/vp8"]
            # Both ways: Chromium decodes the late joiner's camera, and the late joiner hears Chromium.
            await until(lambda: _pictures_of(chromium, 1, 20), 30, "the late joiner's picture in Chromium")
            await late.wait_for(lambda: any(r.loud_frames > 25 for r in late.tracks_by_kind("audio")), 20,
                                "Chromium's tone at the late joiner")
            record = await chromium.record()
            assert record["errors"] == [] and chromium.page_errors == [], record
            assert record["pc"] == 0, record  # switched on the same peer connection, no reconnect
            assert not [m for m in late.messages if m["type"] == "error"]
        finally:
            await doctor.close()


async def _pictures_of(chromium: Participant, sender: int, count: int) -> bool:
    return len([f for f in await chromium.frames() if f[1] == sender]) >= count
