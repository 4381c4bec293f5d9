"""A late joiner without H264 (issue 10, "browsers beyond Chromium"): the consultation's video switches to VP8.

A publisher that prefers H264 (Safari, or Chromium told to) is forwarded as H264 while everyone decodes it.
When a participant that cannot decode H264 joins later (Firefox without OpenH264; here an aiortc client that
offers VP8 only), the SFU offers the publisher its video m-line again with VP8 only; the publisher answers and
sends VP8 (aiortc's sender follows a codec change as a browser does: `aiortc_passthrough.follow_send_codec`),
and every subscriber, the late one included, receives VP8 on an m-line of its own. Audio is not renegotiated.
Real aiortc peers on loopback; what the late joiner decodes is checked by the marker the publisher draws.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from media import aiortc_passthrough
from media.publisher import PublishedTrack
from tests.media.conftest import audio_from, connect, has_picture, video_from
from tests.media.test_codecs import answer_declining_h264

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]


def _published_video(room: Any, name: str) -> PublishedTrack:
    [track] = [t for t in room.peer(name).published.values() if t.kind == "video"]
    return track


def _sent_video_codec(client: Any) -> str | None:
    [transceiver] = [t for t in client.pc.getTransceivers() if t.kind == "video" and t.sender.track is not None]
    codec = aiortc_passthrough.sending_codec(transceiver.sender)
    return codec.mimeType.lower() if codec is not None else None


def _video_codecs_offered(client: Any) -> set[str]:
    """Every video codec in every server offer the client got."""
    return {name.lower() for m in client.messages if m["type"] == "offer"
            for name in re.findall(r"^a=rtpmap:\d+ ([A-Za-z0-9]+)/90000", m["sdp"], flags=re.M)}


async def test_a_late_joiner_without_h264_gets_vp8_from_a_publisher_that_prefers_h264(sfu, make_client) -> None:
    room = sfu.room("c-late-vp8")
    safari = make_client("safari", sender_id=1, video_codec="safari")  # H264 first, VP8 too
    chrome = make_client("chrome", sender_id=2, video_codec="safari")  # decodes H264: present from the start
    await connect(room, safari)
    await connect(room, chrome)
    await chrome.wait_for(has_picture(chrome, "safari", frames=20), within_s=20, what="Safari's H264 in Chrome")
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/h264"
    assert _sent_video_codec(safari) == "video/h264"
    await chrome.wait_for(lambda: bool(audio_from(chrome, "safari")) and audio_from(chrome, "safari")[0]
                          .loud_frames > 25, what="Safari's voice in Chrome")
    [voice] = audio_from(chrome, "safari")
    audio_before = voice.frames

    firefox = make_client("firefox", sender_id=3)  # offers, and so decodes, VP8 only
    await connect(room, firefox)
    await firefox.wait_for(has_picture(firefox, "safari", frames=20), within_s=30,
                           what="Safari's picture in the late joiner")
    # What the late joiner decoded is Safari's picture: its marker, counters moving on.
    [video] = video_from(firefox, "safari")
    assert {s for s, _ in video.markers} == {1} and video.counters_in_order()
    assert "h264" not in _video_codecs_offered(firefox)  # never offered an m-line it cannot decode
    # Safari itself now sends VP8, and the SFU forwards it as VP8.
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/vp8"
    assert _sent_video_codec(safari) == "video/vp8"
    # Chrome, there from the start, gets Safari's picture again, on a VP8 m-line.
    await chrome.wait_for(lambda: len(video_from(chrome, "safari")) == 2
                          and len(video_from(chrome, "safari")[-1].markers) >= 20, within_s=30,
                          what="Safari's VP8 in Chrome")
    assert {s for s, _ in video_from(chrome, "safari")[-1].markers} == {1}
    # Audio was not renegotiated: the same track, still arriving, and the late joiner hears Safari too.
    assert audio_from(chrome, "safari") == [voice] and voice.frames > audio_before
    await firefox.wait_for(lambda: bool(audio_from(firefox, "safari")) and audio_from(firefox, "safari")[0]
                           .loud_frames > 25, what="Safari's voice in the late joiner")
    # Safari sees the late joiner's camera (VP8) as before.
    await safari.wait_for(has_picture(safari, "firefox", frames=10), what="the late joiner's camera at Safari")
    for client in (safari, chrome, firefox):
        assert not [m for m in client.messages if m["type"] == "error"], client.name

    # The late joiner leaves: the consultation stays on VP8 (no renegotiation back).
    offers_before = safari.server_offers
    await room.leave("firefox")
    await chrome.wait_for(lambda: len(video_from(chrome, "safari")[-1].markers) >= 40, within_s=20,
                          what="Safari's picture in Chrome after the late joiner left")
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/vp8"
    assert _sent_video_codec(safari) == "video/vp8"
    assert safari.server_offers - offers_before <= 1  # at most the offer that retires the joiner's m-lines


async def test_a_late_joiner_that_declines_h264_gets_vp8_too(sfu, make_client) -> None:
    """A client whose offer had no video says it lacks H264 only by declining the H264 m-line (port 0)."""
    room = sfu.room("c-late-declined")
    safari = make_client("safari", sender_id=1, video_codec="safari")
    await connect(room, safari)
    listener = make_client("listener", sender_id=4, video_labels=())  # publishes audio only
    await connect(room, listener, offer=False)
    answer_declining_h264(listener)
    await listener.offer()
    assert room.peer("listener").decodes_h264 is None  # it offered no video
    await listener.wait_for(lambda: any(len(t.markers) >= 20 for t in video_from(listener, "safari")),
                            within_s=30, what="Safari's picture after the declined H264 m-line")
    assert room.peer("listener").decodes_h264 is False
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/vp8"
    assert _sent_video_codec(safari) == "video/vp8"
    decoded = [t for t in video_from(listener, "safari") if t.markers]
    assert len(decoded) == 1 and {s for s, _ in decoded[0].markers} == {1} and decoded[0].counters_in_order()
    assert not [m for m in listener.messages if m["type"] == "error"]


async def test_a_publisher_offering_only_h264_stays_h264_and_the_late_joiner_declines_it(sfu, make_client) -> None:
    """Nothing to switch to: the H264 subscriber keeps its picture; the late joiner gets audio (it declines
    the H264 m-line)."""
    room = sfu.room("c-late-h264-only")
    safari = make_client("safari", sender_id=1, video_codec="video/h264")
    chrome = make_client("chrome", sender_id=2, video_codec="safari")
    await connect(room, safari)
    await connect(room, chrome)
    await chrome.wait_for(has_picture(chrome, "safari", frames=10), within_s=20, what="Safari's H264 in Chrome")
    firefox = make_client("firefox", sender_id=3)
    await connect(room, firefox, offer=False)
    answer_declining_h264(firefox)
    await firefox.offer()
    await firefox.wait_for(lambda: bool(audio_from(firefox, "safari")) and audio_from(firefox, "safari")[0]
                           .loud_frames > 25, what="Safari's voice in the late joiner")
    frames = len(video_from(chrome, "safari")[0].markers)
    await chrome.wait_for(lambda: len(video_from(chrome, "safari")[0].markers) > frames + 10,
                          what="Safari's H264 in Chrome going on")
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/h264"
    assert _sent_video_codec(safari) == "video/h264"
    assert len(video_from(chrome, "safari")) == 1


async def test_a_publisher_preferring_h264_and_a_client_without_it_joining_at_once_end_in_vp8(
        sfu, make_client) -> None:
    """Both offers in flight together: whichever the server handles first, the publisher ends up sending VP8 and
    the client without H264 is never offered an H264 m-line."""
    room = sfu.room("c-at-once")
    safari = make_client("safari", sender_id=1, video_codec="safari")
    firefox = make_client("firefox", sender_id=3)
    await asyncio.gather(connect(room, safari), connect(room, firefox))
    await firefox.wait_for(has_picture(firefox, "safari", frames=20), within_s=30, what="Safari's picture in Firefox")
    [video] = video_from(firefox, "safari")
    assert {s for s, _ in video.markers} == {1} and video.counters_in_order()
    assert _published_video(room, "safari").codec.mimeType.lower() == "video/vp8"
    assert _sent_video_codec(safari) == "video/vp8"
    assert "h264" not in _video_codecs_offered(firefox)
    await safari.wait_for(has_picture(safari, "firefox", frames=10), what="Firefox's camera at Safari")
    for client in (safari, firefox):
        assert not [m for m in client.messages if m["type"] == "error"], client.name
