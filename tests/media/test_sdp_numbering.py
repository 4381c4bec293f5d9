"""Server offers keep the payload types and header extension ids the client negotiated (a browser numbers
them differently from aiortc), and use the same numbers for the same codecs on new m-lines."""

from __future__ import annotations

import re

import pytest

from tests.media.conftest import connect, has_picture

pytestmark = [pytest.mark.media, pytest.mark.timeout(60)]

# aiortc numbers VP8/rtx/opus 97/98/96 and mid/audio-level/abs-send-time 1/2/3; Chromium 96/97/111 and 4/1/2.
BROWSER_PT = {"video": {"97": "96", "98": "97"}, "audio": {"96": "111"}}
BROWSER_EXT = {"urn:ietf:params:rtp-hdrext:sdes:mid": "4",
               "urn:ietf:params:rtp-hdrext:ssrc-audio-level": "1",
               "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": "2"}


def number_like_a_browser(sdp: str) -> str:
    sections = sdp.split("\r\nm=")
    out = [sections[0]]
    for section in sections[1:]:
        kind = section.split(" ", 1)[0]
        pts = BROWSER_PT.get(kind, {})

        def pt(match: re.Match[str], pts: dict[str, str] = pts) -> str:
            return pts.get(match.group(0), match.group(0))

        lines = []
        for line in section.split("\r\n"):
            if line.startswith(kind + " "):
                head, fmt = line.split(" ", 3)[:3], line.split(" ", 3)[3]
                line = " ".join([*head, re.sub(r"\d+", pt, fmt)])
            elif re.match(r"a=(rtpmap|rtcp-fb|fmtp):\d+", line):
                line = re.sub(r"(?<=:)\d+", pt, line, count=1)
                line = re.sub(r"(?<=apt=)\d+", pt, line)
            elif line.startswith("a=extmap:"):
                uri = line.split()[1]
                line = f"a=extmap:{BROWSER_EXT.get(uri, line.split()[0][9:])} {uri}"
            lines.append(line)
        out.append("\r\n".join(lines))
    return "\r\nm=".join(out)


def numbering(sdp: str) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, dict[str, str]]]:
    """payload type -> codecs, extension uri -> ids, over the whole SDP; and mid -> {codec: pt}."""
    codecs: dict[str, set[str]] = {}
    extensions: dict[str, set[str]] = {}
    per_mid: dict[str, dict[str, str]] = {}
    for section in sdp.split("\r\nm=")[1:]:
        mid = re.search(r"a=mid:(\S+)", section).group(1)
        for pt, name in re.findall(r"a=rtpmap:(\d+) (\S+)", section):
            codecs.setdefault(pt, set()).add(name.lower())
            per_mid.setdefault(mid, {})[name.lower()] = pt
        for ext_id, uri in re.findall(r"a=extmap:(\d+) (\S+)", section):
            extensions.setdefault(uri, set()).add(ext_id)
    return codecs, extensions, per_mid


async def test_server_offers_keep_a_browsers_payload_types_and_extension_ids(sfu, make_client) -> None:
    room = sfu.room("c-numbering")
    browser = make_client("citizen", sender_id=2, rewrite_offer=number_like_a_browser)
    doctor = make_client("doctor", sender_id=1)
    await connect(room, browser)
    await connect(room, doctor)
    await browser.wait_for(has_picture(browser, "doctor", frames=20), what="picture at the browser-like client")
    await doctor.wait_for(has_picture(doctor, "citizen", frames=20), what="the browser-like client's picture")

    offer = [m["sdp"] for m in browser.messages if m["type"] == "offer"][-1]
    codecs, extensions, per_mid = numbering(offer)
    assert all(len(names) == 1 for names in codecs.values()), codecs  # one number, one codec in the BUNDLE
    assert all(len(ids) == 1 for ids in extensions.values()), extensions
    assert {uri: ids.pop() for uri, ids in extensions.items()} == BROWSER_EXT
    assert per_mid["0"]["vp8/90000"] == "96" and per_mid["1"]["opus/48000/2"] == "111"
    new_mids = [mid for mid in per_mid if mid not in ("0", "1")]
    assert new_mids and all(set(per_mid[mid].items()) <= {("vp8/90000", "96"), ("rtx/90000", "97"),
                                                           ("opus/48000/2", "111")} for mid in new_mids)


async def test_a_new_m_line_moves_off_a_payload_type_the_client_uses_for_another_codec(sfu, make_client) -> None:
    # The client sends video only, with VP8 on 96, which is aiortc's number for opus.
    room = sfu.room("c-collision")
    browser = make_client("citizen", sender_id=2, audio=False, rewrite_offer=number_like_a_browser)
    doctor = make_client("doctor", sender_id=1)
    await connect(room, browser)
    await connect(room, doctor)
    await browser.wait_for(lambda: any(r.kind == "audio" and r.frames > 10 for r in browser.received.values()),
                           what="the doctor's audio at the browser-like client")
    offer = [m["sdp"] for m in browser.messages if m["type"] == "offer"][-1]
    codecs, _, per_mid = numbering(offer)
    assert all(len(names) == 1 for names in codecs.values()), codecs
    assert per_mid["0"]["vp8/90000"] == "96"
    assert all(pts.get("opus/48000/2") not in (None, "96") for pts in per_mid.values() if "opus/48000/2" in pts)
