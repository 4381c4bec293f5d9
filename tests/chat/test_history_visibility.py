"""Invitees see the chat per role: an interpreter from joining; a relative as the host chose when inviting
(default from joining); enforced in the join answer and in the `history` resync."""

from __future__ import annotations

from tests.chat.conftest import base_url, connect, consultation
from tests.conftest import bearer


async def _invite(app, pair, role: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    r = await app.post(f"/api/v1/consultations/{pair.cid}/invites", json={"role": role, "lobby": False, **extra},
                       headers=bearer(pair.doctor))
    assert r.status == 201, await r.text()
    return await r.json()


async def _texts_seen_by(app, pair, token: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    guest = await connect(base_url(app), token, display_name="Gjest")
    try:
        ack = await guest.call("join", {"consultation_id": pair.cid})
        assert ack["ok"], ack
        resync = await guest.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert resync["ok"], resync
        return [m["text"] for m in ack["history"]], [m["text"] for m in resync["messages"]]
    finally:
        await guest.close()


async def test_interpreter_and_relative_see_what_their_invite_allows(chat_app):
    pair = await consultation(chat_app)
    citizen = await connect(base_url(chat_app), pair.citizen)
    try:
        assert (await citizen.call("join", {"consultation_id": pair.cid}))["ok"]
        assert (await citizen.send(pair.cid, "Jeg har vondt i brystet"))["ok"]

        interpreter = await _invite(chat_app, pair, "interpreter", history="all")  # the host cannot widen it
        assert interpreter["history"] == "from_join"
        relative_default = await _invite(chat_app, pair, "relative")
        assert relative_default["history"] == "from_join"
        relative_all = await _invite(chat_app, pair, "relative", history="all")
        assert relative_all["history"] == "all"

        assert await _texts_seen_by(chat_app, pair, relative_all["token"]) == (["Jeg har vondt i brystet"],) * 2
        assert await _texts_seen_by(chat_app, pair, relative_default["token"]) == ([], [])
        seen_by_interpreter = await connect(base_url(chat_app), interpreter["token"], display_name="Tolk")
        try:
            ack = await seen_by_interpreter.call("join", {"consultation_id": pair.cid})
            assert ack["history"] == []
            assert (await citizen.send(pair.cid, "Nå er tolken her"))["ok"]
            await seen_by_interpreter.wait_for("message")
            resync = await seen_by_interpreter.call("history", {"consultation_id": pair.cid, "after_id": None})
            assert [m["text"] for m in resync["messages"]] == ["Nå er tolken her"]
        finally:
            await seen_by_interpreter.close()
        # The patient and the clinician still see everything.
        full = await citizen.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert [m["text"] for m in full["messages"]] == ["Jeg har vondt i brystet", "Nå er tolken her"]
    finally:
        await citizen.close()


async def test_a_bad_history_choice_is_a_422(chat_app):
    pair = await consultation(chat_app)
    r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/invites",
                            json={"role": "relative", "history": "everything"}, headers=bearer(pair.doctor))
    assert r.status == 422 and (await r.json())["error"]
