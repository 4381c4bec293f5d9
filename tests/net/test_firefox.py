"""Firefox ESR (Debian's, no OpenH264) in a network namespace against the server, driven over WebDriver BiDi
(tests/net/firefox.py): the page is the server's own web client. Issue 10, "browsers beyond Chromium"."""

from __future__ import annotations

import aiohttp
import pytest

from load_tests.clients import MediaClient, SignalClient
from signaling.signal_ws import SFU
from tests import netns
from tests.signal.conftest import take_consultation

pytestmark = [pytest.mark.media, pytest.mark.timeout(120)]


def _last(firefox) -> dict:  # type: ignore[no-untyped-def]
    stats = firefox.of("stats")
    return stats[-1] if stats else {}


async def _doctor(http: aiohttp.ClientSession, served, namespace: netns.Namespace, cid: str, token: str,  # type: ignore[no-untyped-def]
                  codec: str) -> SignalClient:
    base = str(served.make_url("/"))
    doctor = SignalClient(http, base, cid, token, MediaClient("doctor", sender_id=1, video_codec=codec,
                                                              listen_ips=(namespace.host_ip,)), "doctor")
    await doctor.connect()
    return doctor


async def test_firefox_without_h264_gets_vp8_from_a_publisher_that_prefers_h264(
        served, namespace: netns.Namespace, net_client) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    firefox = net_client(cid, citizen_token, module="tests.net.firefox")
    await firefox.wait_for(lambda: _last(firefox).get("state") == "admitted", 60, "Firefox admitted")
    async with aiohttp.ClientSession() as http:
        doctor = await _doctor(http, served, namespace, cid, doctor_token, "safari")
        try:
            await firefox.wait_for(lambda: _last(firefox).get("video_frames", 0) > 30, 40, "30 frames in Firefox")
            # The picture is the doctor's: sender id 1 and a counter that moves on.
            first = await firefox.wait_for(
                lambda: next((m for m in _last(firefox).get("markers", []) if m[0] == 1), None), 20,
                "the doctor's marker in Firefox")
            await firefox.wait_for(
                lambda: any(m[0] == 1 and m[1] > first[1] for m in _last(firefox).get("markers", [])), 20,
                "a later frame of the doctor in Firefox")
            room = served.app[SFU].room(cid)
            [video] = [t for p in room._peers.values() for t in p.published.values()
                       if (t.kind == "video" and t.participant_id == "doctor") or
                       (t.kind == "video" and p is room.peer(doctor.welcome["participant_id"]))]
            assert video.codec.mimeType.lower() == "video/vp8"
            await doctor.media.wait_for(lambda: any(r.frames > 10 for r in doctor.media.tracks_by_kind("video")),
                                        20, "Firefox's camera at the doctor")
            assert _last(firefox)["errors"] == []
        finally:
            await doctor.close()


async def test_firefox_declines_an_h264_only_track_and_keeps_audio_and_its_own_video_going(
        served, namespace: netns.Namespace, net_client) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    async with aiohttp.ClientSession() as http:
        doctor = await _doctor(http, served, namespace, cid, doctor_token, "video/h264")  # cannot switch
        try:
            firefox = net_client(cid, citizen_token, module="tests.net.firefox")
            await firefox.wait_for(lambda: _last(firefox).get("audio_packets", 0) > 150, 60,
                                   "the doctor's voice in Firefox")
            await doctor.media.wait_for(lambda: any(r.frames > 10 for r in doctor.media.tracks_by_kind("video")),
                                        20, "Firefox's camera at the doctor")
            last = _last(firefox)
            assert last["errors"] == [] and last["state"] == "admitted", last  # no sdp_invalid, no reconnects
            room = served.app[SFU].room(cid)
            [peer] = [p for p in room._peers.values() if p.decodes_h264 is False]
            assert [t for t in peer.pc.getTransceivers() if t.direction == "inactive"]
        finally:
            await doctor.close()
