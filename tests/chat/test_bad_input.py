"""What bad input gets: a refused connection or an `error` with a code -- and the server keeps serving."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.chat.conftest import ORIGIN, base_url, connect, consultation
from tests.conftest import bearer, dev_token, hold_rate_windows


async def _refused(url: str, token: str | None, origin: str | None = ORIGIN) -> str:
    """The refusal's code (from `connect_error`), or the transport's error text when refused before that."""
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    sio.on("connect_error", lambda data=None: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError) as exc:
        await sio.connect(url, auth={"token": token} if token else {}, headers={"Origin": origin} if origin else {},
                          transports=["websocket"], wait_timeout=5)
    await sio.disconnect()
    return str(errors[0]) if errors else str(exc.value)


async def test_connection_without_token_is_refused(chat_app):
    err = await _refused(base_url(chat_app), None)
    assert "unauthorized" in str(err)


async def test_connection_with_a_bad_token_is_refused(chat_app):
    err = await _refused(base_url(chat_app), "not-a-jwt")
    assert "invalid_token" in str(err)


async def test_connection_from_another_origin_is_refused(chat_app):
    citizen = await dev_token(chat_app, "c1", "citizen")
    await _refused(base_url(chat_app), citizen, origin="https://evil.example")


async def test_connection_without_origin_is_refused(chat_app):
    citizen = await dev_token(chat_app, "c1", "citizen")
    err = await _refused(base_url(chat_app), citizen, origin=None)
    assert "origin_not_allowed" in str(err)


async def test_join_checks_participation_admission_and_tenant(chat_app):
    pair = await consultation(chat_app)
    url = base_url(chat_app)
    stranger = await connect(url, await dev_token(chat_app, "other-doc", "clinician"))
    bergen = await connect(url, await dev_token(chat_app, "doc", "clinician", tenant="bergen"))
    try:
        for c in (stranger, bergen):
            ack = await c.call("join", {"consultation_id": pair.cid})
            assert ack["ok"] is False and ack["error"] == "consultation_not_found", ack
        ack = await stranger.call("join", {"consultation_id": "c_doesnotexist"})
        assert ack["error"] == "consultation_not_found"
        # Not joined: nothing may be sent or read there.
        ack = await stranger.call("message", {"consultation_id": pair.cid, "client_id": "x", "text": "hei"})
        assert ack["error"] == "not_joined"
        ack = await stranger.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert ack["error"] == "not_joined"
        assert stranger.got("error")[-1]["error"] == "not_joined"  # also as an `error` event
    finally:
        await stranger.close()
        await bergen.close()


async def test_a_guest_in_the_lobby_is_not_admitted_and_a_session_token_is_bound(chat_app):
    pair = await consultation(chat_app)
    other = await consultation(chat_app, tag="2")
    r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/invites",
                            json={"role": "interpreter", "ttl_s": 600, "lobby": True}, headers=bearer(pair.doctor))
    invite = (await r.json())["token"]
    url = base_url(chat_app)
    guest = await connect(url, invite, display_name="Tolk")
    try:
        who = await guest.call("whoami")
        assert who["role"] == "interpreter" and who["session_token"]
        ack = await guest.call("join", {"consultation_id": pair.cid})
        assert ack["error"] == "not_admitted"
        r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/participants/{who['participant_id']}/admit",
                                headers=bearer(pair.doctor))
        assert r.status == 200
        assert (await guest.call("join", {"consultation_id": pair.cid}))["ok"]
        # The invite's session is bound to its one consultation.
        ack = await guest.call("join", {"consultation_id": other.cid})
        assert ack["error"] == "consultation_not_found"
    finally:
        await guest.close()
    # A spent invite does not connect again.
    err = await _refused(url, invite)
    assert "invite_used" in str(err)


async def test_oversize_text_and_empty_text_are_refused(joined):
    pair, _doctor, citizen = joined
    ack = await citizen.send(pair.cid, "x" * 4001)
    assert ack["error"] == "text_too_long"
    ack = await citizen.send(pair.cid, "   ")
    assert ack["error"] == "text_empty"
    assert (await citizen.send(pair.cid, "x" * 4000))["ok"]


async def test_a_flood_is_rate_limited_with_retry_after(chat_app, joined):
    from signaling.chat_wiring import CHAT

    held = hold_rate_windows(chat_app.server.app)  # the whole flood in one window, however slow the machine
    limits = chat_app.server.app[CHAT].limits
    pair, doctor, citizen = joined
    acks = [await citizen.send(pair.cid, f"flom {i}") for i in range(limits.messages_per_window + 15)]
    assert [a["ok"] for a in acks] == [True] * limits.messages_per_window + [False] * 15
    assert all(a["error"] == "rate_limited" and a["retry_after_s"] >= 1 for a in acks if not a["ok"])
    held.advance(limits.window_s)  # the next window
    assert (await citizen.send(pair.cid, "igjen"))["ok"]
    # Only the stored ones were broadcast, and the other side can still talk.
    assert (await doctor.send(pair.cid, "rolig nå"))["ok"]


@pytest.mark.parametrize("event,payload,code", [
    ("join", None, "invalid_event"),
    ("join", "c_123", "invalid_event"),
    ("join", [1, 2], "invalid_event"),
    ("join", {}, "invalid_event"),
    ("join", {"consultation_id": 42}, "invalid_event"),
    ("join", {"consultation_id": "../../etc"}, "invalid_event"),
    ("join", {"consultation_id": "c_x", "after_id": "last"}, "invalid_event"),
    ("message", {"consultation_id": "c_x", "text": "hei"}, "invalid_event"),
    ("message", {"consultation_id": "c_x", "client_id": "a" * 65, "text": "hei"}, "invalid_event"),
    ("message", {"consultation_id": "c_x", "client_id": "a", "text": 5}, "invalid_event"),
    ("history", {"consultation_id": "c_x", "after_id": 17}, "invalid_event"),
    ("history", {"consultation_id": "c_x", "after_id": None, "limit": "10"}, "invalid_event"),
    ("read", {"consultation_id": "c_x"}, "invalid_event"),
    ("typing", {"consultation_id": "c_x", "typing": "yes"}, "invalid_event"),
    ("watch_ticket", {"ticket_id": None}, "invalid_event"),
    ("attachment", {"consultation_id": "c_x", "client_id": "a", "data": "not bytes"}, "not_joined"),
])
async def test_malformed_events_get_an_error_code(joined, event, payload, code):
    pair, _doctor, citizen = joined
    ack = await citizen.call(event, payload)
    assert ack["ok"] is False and ack["error"] == code, ack
    assert (await citizen.send(pair.cid, "fortsatt her"))["ok"]


async def test_unknown_events_and_extra_arguments_do_not_break_the_connection(joined):
    pair, doctor, citizen = joined
    await citizen.sio.emit("no_such_event", {"x": 1})
    ack = await citizen.sio.call("message", ({"consultation_id": pair.cid}, "extra"), timeout=5)
    assert ack["error"] == "invalid_event"
    await asyncio.sleep(0.05)
    assert (await citizen.send(pair.cid, "fortsatt her"))["ok"]
    await doctor.wait_for("message")
