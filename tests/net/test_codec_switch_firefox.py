"""Firefox ESR (Debian's, no OpenH264) as the late joiner (issue 10, "browsers beyond Chromium"): a publisher that
prefers H264 is already in the consultation and sends H264; Firefox joins, the server switches the publisher to
VP8 (a server offer) and Firefox decodes its picture. Firefox runs in a network namespace, driven over WebDriver
BiDi (tests/net/firefox.py), with the server's own web client."""

from __future__ import annotations

import aiohttp
import pytest

from load_tests.clients import MediaClient, SignalClient
from media import aiortc_passthrough
from signaling.signal_ws import SFU
from tests import netns
from tests.signal.conftest import take_consultation

pytestmark = [pytest.mark.media, pytest.mark.timeout(150)]


def _last(firefox) -> dict:  # type: ignore[no-untyped-def]
    stats = firefox.of("stats")
    return stats[-1] if stats else {}


def _sent_video_codec(client: MediaClient) -> str | None:
    [transceiver] = [t for t in client.pc.getTransceivers() if t.kind == "video" and t.sender.track is not None]
    codec = aiortc_passthrough.sending_codec(transceiver.sender)
    return codec.mimeType.lower() if codec is not None else None


async def test_firefox_joining_late_gets_vp8_from_a_publisher_that_was_sending_h264(
        served, namespace: netns.Namespace, net_client) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    base = str(served.make_url("/"))
    async with aiohttp.ClientSession() as http:
        media = MediaClient("doctor", sender_id=1, video_codec="safari", listen_ips=(namespace.host_ip,))
        doctor = SignalClient(http, base, cid, doctor_token, media, "doctor")
        try:
            await doctor.connect()
            await media.wait_for(lambda: _sent_video_codec(media) == "video/h264", 20, "the doctor sending H264")
            room = served.app[SFU].room(cid)
            [video] = [t for p in room.peers() for t in p.published.values() if t.kind == "video"]
            assert video.codec.mimeType.lower() == "video/h264"

            firefox = net_client(cid, citizen_token, module="tests.net.firefox")
            first = await firefox.wait_for(
                lambda: next((m for m in _last(firefox).get("markers", []) if m[0] == 1), None), 60,
                "the doctor's marker in Firefox")
            await firefox.wait_for(
                lambda: any(m[0] == 1 and m[1] > first[1] for m in _last(firefox).get("markers", [])), 20,
                "a later frame of the doctor in Firefox")
            assert video.codec.mimeType.lower() == "video/vp8" and _sent_video_codec(media) == "video/vp8"
            await firefox.wait_for(lambda: _last(firefox).get("audio_packets", 0) > 100, 20,
                                   "the doctor's voice in Firefox")
            await media.wait_for(lambda: any(r.frames > 10 for r in media.tracks_by_kind("video")), 20,
                                 "Firefox's camera at the doctor")
            last = _last(firefox)
            assert last["errors"] == [] and last["state"] == "admitted", last
        finally:
            await doctor.close()
