"""Browsers beyond Chromium (issue 10): declined m-lines, a video codec every subscriber decodes, and an H264
offer that lists each payload type once. aiortc clients stand in for Firefox without OpenH264 (offers and
decodes VP8 only, declines an H264 m-line with port 0) and Safari (offers H264 first, then VP8)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from media.sdp import accept_declined, decodes_h264
from tests.media.conftest import audio_from, connect, has_picture, video_from

pytestmark = [pytest.mark.media, pytest.mark.timeout(60)]


def _sections(sdp: str) -> list[str]:
    head, *sections = re.split(r"(?=^m=)", sdp, flags=re.M)
    return [head, *sections]


def decline_h264(sdp: str) -> str:
    """Answer every H264 m-line as Firefox without OpenH264 does: port 0, no ICE, no DTLS, no candidates."""
    head, *sections = _sections(sdp)
    declined_mids = []
    out = []
    for section in sections:
        if "H264/90000" not in section:
            out.append(section)
            continue
        mid = re.search(r"^a=mid:(\S+)", section, flags=re.M).group(1)  # type: ignore[union-attr]
        pt = re.search(r"^a=rtpmap:(\d+) H264/90000", section, flags=re.M).group(1)  # type: ignore[union-attr]
        declined_mids.append(mid)
        out.append(f"m=video 0 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:{mid}\r\n"
                   f"a=rtpmap:{pt} H264/90000\r\n")
    bundle = re.search(r"^a=group:BUNDLE (.*)$", head, flags=re.M)
    if bundle:
        kept = [m for m in bundle.group(1).split() if m not in declined_mids]
        head = head.replace(bundle.group(0), "a=group:BUNDLE " + " ".join(kept))
    return head + "".join(out)


def answer_declining_h264(client: Any) -> None:
    """Make `client` decline every H264 m-line in its answers, as Firefox without OpenH264 does."""
    forward = client.to_server
    assert forward is not None

    async def declining(message: dict[str, Any]) -> None:
        if message["type"] == "answer":
            message = {**message, "sdp": decline_h264(message["sdp"])}
        await forward(message)

    client.to_server = declining


def _video_formats(sdp: str) -> list[list[str]]:
    return [line.split()[3:] for line in sdp.splitlines() if line.startswith("m=video")]


async def test_an_h264_offer_lists_each_payload_type_once(sfu, make_client) -> None:
    room = sfu.room("c-h264-pts")
    doctor = make_client("doctor", sender_id=1, video_codec="video/h264")
    citizen = make_client("citizen", sender_id=2)
    await connect(room, doctor)
    await connect(room, citizen)
    await citizen.wait_for(has_picture(citizen, "doctor", frames=10), what="H264 picture")
    offers = [m["sdp"] for m in citizen.messages if m["type"] == "offer"]
    formats = [f for sdp in offers for f in _video_formats(sdp)]
    assert formats and all(len(f) == len(set(f)) for f in formats), formats


async def test_a_declined_h264_m_line_is_accepted_and_audio_and_other_video_still_flow(sfu, make_client) -> None:
    room = sfu.room("c-declined")
    safari = make_client("safari", sender_id=1, video_codec="video/h264")  # H264 only: nothing to switch to
    firefox = make_client("firefox", sender_id=2)
    await connect(room, safari)
    await connect(room, firefox, offer=False)
    answer_declining_h264(firefox)
    await firefox.offer()
    # Safari's voice reaches Firefox: the answer that declined the H264 m-line was taken, not refused.
    await firefox.wait_for(lambda: bool(audio_from(firefox, "safari")) and audio_from(firefox, "safari")[0]
                           .loud_frames > 25, what="Safari's voice in Firefox")
    assert not [m for m in firefox.messages if m["type"] == "error"]
    peer = room.peer("firefox")
    declined = [t for t in peer.pc.getTransceivers() if t.direction == "inactive"]
    assert len(declined) == 1 and peer.decodes_h264 is False
    # Later renegotiation still works: a VP8 publisher joins and Firefox sees it.
    chrome = make_client("chrome", sender_id=3)
    await connect(room, chrome)
    await firefox.wait_for(has_picture(firefox, "chrome", frames=10), what="Chrome's picture in Firefox")
    assert not [m for m in firefox.messages if m["type"] == "error"]


async def test_a_publisher_offering_h264_and_vp8_sends_vp8_when_a_participant_lacks_h264(sfu, make_client) -> None:
    room = sfu.room("c-vp8")
    firefox = make_client("firefox", sender_id=2)  # offers (and so decodes) VP8 only
    safari = make_client("safari", sender_id=1, video_codec="safari")
    await connect(room, firefox)
    await connect(room, safari)
    await firefox.wait_for(has_picture(firefox, "safari", frames=20), what="Safari's picture in Firefox")
    [published] = [t for t in room.peer("safari").published.values() if t.kind == "video"]
    assert published.codec.mimeType.lower() == "video/vp8"
    [video] = video_from(firefox, "safari")
    assert {s for s, _ in video.markers} == {1} and video.counters_in_order()
    answer = next(m["sdp"] for m in safari.messages if m["type"] == "answer")
    assert "H264" not in answer  # Safari is not even allowed to send H264


async def test_a_publisher_keeps_h264_when_everyone_decodes_it(sfu, make_client) -> None:
    room = sfu.room("c-h264-ok")
    chrome = make_client("chrome", sender_id=2, video_codec="safari")  # lists H264 too
    safari = make_client("safari", sender_id=1, video_codec="safari")
    await connect(room, chrome)
    await connect(room, safari)
    await chrome.wait_for(has_picture(chrome, "safari", frames=20), what="Safari's picture in Chrome")
    [published] = [t for t in room.peer("safari").published.values() if t.kind == "video"]
    assert published.codec.mimeType.lower() == "video/h264"


FIREFOX_OFFER = ("v=0\r\no=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                 "a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
                 "a=ice-ufrag:u\r\na=ice-pwd:pppppppppppppppppppppp\r\na=rtcp-mux\r\na=setup:active\r\n"
                 "a=rtpmap:96 opus/48000/2\r\n"
                 "m=video 0 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:1\r\n"
                 "a=rtcp-mux\r\na=rtpmap:97 VP8/90000\r\n")


def test_a_bundle_only_m_line_in_an_offer_says_what_the_client_decodes() -> None:
    """Firefox offers every m-line but the first with port 0 and a=bundle-only: not declined."""
    assert decodes_h264(FIREFOX_OFFER) is False
    assert decodes_h264(FIREFOX_OFFER.replace("97 VP8/90000", "97 H264/90000")) is True
    assert decodes_h264(FIREFOX_OFFER.split("m=video")[0]) is None


def test_accepting_a_declined_m_line_keeps_rtcp_mux_on_m_lines_without_a_rtcp() -> None:
    """Firefox writes a=rtcp-mux without a=rtcp; aiortc's writer drops the one without the other."""
    answer = FIREFOX_OFFER.replace("a=bundle-only\r\n", "").replace("a=rtcp-mux\r\na=rtpmap:97", "a=rtpmap:97")
    answer = answer.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0")
    rewritten, mids = accept_declined(answer, FIREFOX_OFFER)
    assert mids == ["1"]
    sections = rewritten.split("m=")[1:]
    assert all("a=rtcp-mux" in s for s in sections) and "a=inactive" in sections[1]
    assert "a=ice-ufrag:u" in sections[1] and "a=group:BUNDLE 0 1" in rewritten
