"""End-to-end over the signaling WebSocket: aiortc peers, content checked by markers drawn in the frames."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.conftest import bearer, dev_token
from tests.signal.conftest import take_consultation

pytestmark = pytest.mark.media


def _video_from(client, sender_id: int) -> list:
    return [r for r in client.media.tracks_by_kind("video") if r.markers and r.markers[-1][0] == sender_id]


async def _sees(client, sender_id: int, frames: int = 10, within: float = 10.0) -> None:
    await client.media.wait_for(lambda: any(len(r.markers) >= frames for r in _video_from(client, sender_id)),
                                within, f"{frames} frames from sender {sender_id}")
    track = max(_video_from(client, sender_id), key=lambda r: len(r.markers))
    counters = [n for sender, n in track.markers if sender == sender_id]
    assert counters == sorted(counters) and len(set(counters)) == len(counters), counters


async def test_citizen_and_clinician_see_and_hear_each_other(live, participants):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor", sender_id=1)
    citizen = participants(cid, ct, "citizen", sender_id=2)
    welcome = await doctor.connect()
    assert welcome["state"] == "admitted" and welcome["ice_servers"] == [] and welcome["session_token"]
    await citizen.connect()
    await _sees(doctor, 2)
    await _sees(citizen, 1)
    await citizen.media.wait_for(lambda: any(r.loud_frames > 5 for r in citizen.media.tracks_by_kind("audio")),
                                 10, "the doctor's voice")
    await doctor.media.wait_for(lambda: len(doctor.media.participants) == 2, 15, "participants update")
    roles = sorted(p["role"] for p in doctor.media.participants)
    assert roles == ["citizen", "clinician"]
    # the consultation became active once both were in
    c = await (await live.get(f"/api/v1/consultations/{cid}", headers=bearer(dt))).json()
    assert c["state"] == "active"
    # privacy: the server offers only its own loopback candidates
    answers = [m["sdp"] for m in citizen.media.messages if m.get("type") in ("answer", "offer")]
    candidates = [line for sdp in answers for line in sdp.splitlines() if line.startswith("a=candidate")]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates)


async def test_lobby_knock_admit_then_media(live, participants):
    cid, _, dt = await take_consultation(live)
    invite = await (await live.post(f"/api/v1/consultations/{cid}/invites", json={"role": "interpreter"},
                                    headers=bearer(dt))).json()
    doctor = participants(cid, dt, "doctor", sender_id=1)
    await doctor.connect()
    tolk = participants(cid, invite["token"], "tolk", sender_id=3)
    welcome = await tolk.connect(offer=False)
    assert welcome["state"] == "lobby" and welcome["role"] == "interpreter"
    await tolk.send({"type": "offer", "sdp": "v=0"})
    assert (await tolk.wait_event("error"))["code"] == "not_admitted"
    knock = await doctor.wait_event("knock")
    assert knock["participant_id"] == welcome["participant_id"] and knock["role"] == "interpreter"
    r = await live.post(f"/api/v1/consultations/{cid}/participants/{knock['participant_id']}/admit",
                        headers=bearer(dt))
    assert r.status == 200
    await tolk.wait_admitted()
    await tolk.media.offer()
    await _sees(tolk, 1)
    await _sees(doctor, 3)
    # the spent invite cannot be used again
    again = participants(cid, invite["token"], "tolk2")
    with pytest.raises(ConnectionRefusedError, match="invite_used"):
        await again.connect()
    # the session token from welcome brings the same participant back
    back = participants(cid, welcome["session_token"], "tolk-again", sender_id=3)
    assert (await back.connect(offer=False))["participant_id"] == welcome["participant_id"]


async def test_denied_knock_is_closed(live, participants):
    cid, _, dt = await take_consultation(live)
    stranger_token = await dev_token(live, "stranger", "relative")
    doctor = participants(cid, dt, "doctor")
    await doctor.connect()
    stranger = participants(cid, stranger_token, "stranger")
    welcome = await stranger.connect(offer=False)
    assert welcome["state"] == "lobby"
    await live.post(f"/api/v1/consultations/{cid}/participants/{welcome['participant_id']}/deny", headers=bearer(dt))
    await asyncio.wait_for(stranger.closed.wait(), 15)
    assert "denied" in stranger.event_types() and stranger.close_code == 4403


async def test_end_closes_every_connection_with_outcome(live, participants):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor")
    citizen = participants(cid, ct, "citizen")
    await doctor.connect()
    await citizen.connect()
    await live.post(f"/api/v1/consultations/{cid}/end", json={"outcome": "referred"}, headers=bearer(dt))
    for c in (doctor, citizen):
        await asyncio.wait_for(c.closed.wait(), 15)
        ended = await c.wait_event("ended")
        assert ended["outcome"] == "referred" and c.close_code == 4410
    late = participants(cid, ct, "late")
    with pytest.raises(ConnectionRefusedError, match="consultation_ended"):
        await late.connect()


async def test_new_connection_replaces_old_one(live, participants):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor", sender_id=1)
    await doctor.connect()
    wifi = participants(cid, ct, "citizen-wifi", sender_id=2)
    await wifi.connect()
    await _sees(doctor, 2, frames=5)
    lte = participants(cid, ct, "citizen-4g", sender_id=4)
    await lte.connect()
    await asyncio.wait_for(wifi.closed.wait(), 15)
    assert wifi.close_code == 4409
    await _sees(lte, 1, frames=5)
    await _sees(doctor, 4, frames=5)


async def test_dropped_connection_is_removed_after_grace(live, participants):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor")
    citizen = participants(cid, ct, "citizen")
    await doctor.connect()
    await citizen.connect()
    await doctor.media.wait_for(lambda: len(doctor.media.participants) == 2, 15, "both in")
    dropped_at = time.monotonic()
    await citizen.drop()
    await doctor.media.wait_for(lambda: len(doctor.media.participants) == 1, 10, "citizen removed after grace")
    # Never before the grace period (0.5 s here) is over; a lower bound only, so a slow machine can't break it.
    assert time.monotonic() - dropped_at >= 0.5


async def _next_error(ws) -> dict:
    """The next `error` message, skipping participants updates and the like."""
    while True:
        msg = await ws.receive_json(timeout=15)
        if msg["type"] == "error":
            return msg


async def test_bad_input_gets_errors_and_server_keeps_serving(live, participants):
    cid, ct, dt = await take_consultation(live)
    base = str(live.make_url("/")).rstrip("/").replace("http", "ws")
    url = f"{base}/api/v1/consultations/{cid}/signal"
    own = {"Origin": str(live.make_url("/")).rstrip("/")}  # a page of this server, as a browser says
    async with aiohttp.ClientSession() as http:
        # no Origin at all is refused before the upgrade, as on the chat socket
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_origin:
            await http.ws_connect(url)
        assert no_origin.value.status == 403
        # no hello first
        async with http.ws_connect(url, headers=own) as ws:
            await ws.send_json({"type": "offer", "sdp": "v=0"})
            assert (await ws.receive_json())["code"] == "hello_expected"
            await ws.receive()
            assert ws.close_code == 4400
        # bad token
        async with http.ws_connect(url, headers=own) as ws:
            await ws.send_json({"type": "hello", "token": "not-a-token"})
            assert (await ws.receive_json())["code"] == "invalid_token"
            await ws.receive()
            assert ws.close_code == 4401
        # another tenant's clinician
        bergen = await dev_token(live, "d-bergen", "clinician", tenant="bergen")
        async with http.ws_connect(url, headers=own) as ws:
            await ws.send_json({"type": "hello", "token": bergen})
            assert (await ws.receive_json())["code"] == "consultation_not_found"
            await ws.receive()
            assert ws.close_code == 4404
        # a foreign origin is refused before the upgrade
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        # admitted, then garbage of every kind: each gets an error and the connection stays
        async with http.ws_connect(url, headers=own) as ws:
            await ws.send_json({"type": "hello", "token": dt})
            assert (await ws.receive_json())["type"] == "welcome"
            await ws.send_str("{not json")
            assert (await _next_error(ws))["code"] == "bad_message"
            await ws.send_json({"type": "dance"})
            assert (await _next_error(ws))["code"] == "unknown_type"
            await ws.send_json({"type": "offer", "sdp": "this is not sdp"})
            assert (await _next_error(ws))["code"] == "sdp_invalid"
            await ws.send_json({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000})
            assert (await _next_error(ws))["code"] == "sdp_too_large"
            await ws.send_json({"type": "offer"})
            assert (await _next_error(ws))["code"] == "bad_sdp"
            await ws.send_json({"type": "answer", "sdp": "v=0"})
            assert (await _next_error(ws))["code"]
            await ws.send_json({"type": "candidate", "candidate": "x"})
            assert (await _next_error(ws))["code"] == "bad_candidate"
            # a flood closes the connection
            for _ in range(200):
                if ws.closed:
                    break
                await ws.send_json({"type": "candidate", "candidate": None})
            codes = []
            while not ws.closed:
                msg = await ws.receive(timeout=15)
                if msg.type == aiohttp.WSMsgType.TEXT:
                    codes.append(msg.json().get("code"))
            assert "rate_limited" in codes and ws.close_code == 4429
        # binary frames are refused
        async with http.ws_connect(url, headers=own) as ws:
            await ws.send_json({"type": "hello", "token": dt})
            await ws.receive_json()
            await ws.send_bytes(b"\x00\x01")
            assert (await _next_error(ws))["code"] == "text_expected"
    # the server still serves a normal call
    doctor = participants(cid, dt, "doctor", sender_id=1)
    citizen = participants(cid, ct, "citizen", sender_id=2)
    await doctor.connect()
    await citizen.connect()
    await _sees(doctor, 2, frames=5)


async def test_metrics_count_forwarded_media_and_sessions(live, participants):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor", sender_id=1)
    citizen = participants(cid, ct, "citizen", sender_id=2)
    await doctor.connect()
    await citizen.connect()
    await _sees(doctor, 2, frames=5)
    text = await (await live.get("/metrics")).text()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["nettlege_media_forwarded_packets_total"] > 0
    assert values["nettlege_media_rooms"] == 1
    assert values["nettlege_media_peer_connections"] == 2
    assert values["nettlege_signal_sessions"] == 2


@pytest.mark.app_config(signal_answer_timeout_s=1.0)
async def test_a_client_that_never_answers_a_server_offer_is_closed(participants, live):
    cid, ct, dt = await take_consultation(live)
    doctor = participants(cid, dt, "doctor", sender_id=1)
    await doctor.connect()
    deliver = doctor.media.deliver

    async def drop_offers(message):  # a broken client: takes server offers and never answers them
        if message.get("type") != "offer":
            await deliver(message)

    doctor.media.deliver = drop_offers
    citizen = participants(cid, ct, "citizen", sender_id=2)
    await citizen.connect()  # its tracks make the server offer them to the doctor
    await asyncio.wait_for(doctor.closed.wait(), 10)
    assert doctor.close_code == 4408 and "answer_timeout" in [e.get("code") for e in doctor.events]
