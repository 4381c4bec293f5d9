"""Queue and lobby events on the chat connection: queue_position, called, knock; presence keeps the place."""

from __future__ import annotations

from signaling.appkeys import STORE
from tests.chat.conftest import base_url, connect, consultation, eventually
from tests.conftest import bearer, dev_token

QUEUE = "/api/v1/tenants/oslo/services/nettlege/queue"


async def _queue(app, sub: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    token = await dev_token(app, sub, "citizen")
    r = await app.post(QUEUE, json={"channel": "chat", "reason": "hoste"}, headers=bearer(token))
    assert r.status == 201, await r.text()
    return token, (await r.json())["ticket_id"]


async def test_waiting_citizen_sees_position_changes_and_is_called(chat_app):
    first_token, first_ticket = await _queue(chat_app, "first")
    me_token, my_ticket = await _queue(chat_app, "me")
    me = await connect(base_url(chat_app), me_token)
    try:
        ack = await me.call("watch_ticket", {"ticket_id": my_ticket})
        assert ack == {"ok": True, "ticket_id": my_ticket, "state": "waiting", "position": 2, "eta_s": 600,
                       "consultation_id": None}
        r = await chat_app.delete(f"/api/v1/tickets/{first_ticket}", headers=bearer(first_token))
        assert r.status == 204
        [pos] = await me.wait_for("queue_position")
        assert pos == {"ticket_id": my_ticket, "state": "waiting", "position": 1, "eta_s": 0}
        doctor = await dev_token(chat_app, "dr", "clinician")
        r = await chat_app.post(QUEUE + "/take", headers=bearer(doctor))
        cid = (await r.json())["consultation_id"]
        [called] = await me.wait_for("called")
        assert called == {"ticket_id": my_ticket, "consultation_id": cid}
        assert (await me.call("join", {"consultation_id": cid}))["ok"]
    finally:
        await me.close()


async def test_someone_elses_ticket_cannot_be_watched(chat_app):
    _token, ticket = await _queue(chat_app, "owner")
    other = await connect(base_url(chat_app), await dev_token(chat_app, "snoop", "citizen"))
    bergen = await connect(base_url(chat_app), await dev_token(chat_app, "owner", "citizen", tenant="bergen"))
    try:
        assert (await other.call("watch_ticket", {"ticket_id": ticket}))["error"] == "ticket_not_found"
        assert (await bergen.call("watch_ticket", {"ticket_id": ticket}))["error"] == "ticket_not_found"
    finally:
        await other.close()
        await bergen.close()


async def test_a_called_ticket_answers_with_its_consultation_on_watch(chat_app):
    """A citizen who was away when `called` went out learns it on the next watch (resync, not pub/sub)."""
    token, ticket = await _queue(chat_app, "late")
    doctor = await dev_token(chat_app, "dr", "clinician")
    cid = (await (await chat_app.post(QUEUE + "/take", headers=bearer(doctor))).json())["consultation_id"]
    me = await connect(base_url(chat_app), token)
    try:
        ack = await me.call("watch_ticket", {"ticket_id": ticket})
        assert ack["state"] == "taken" and ack["consultation_id"] == cid and ack["position"] is None
    finally:
        await me.close()


async def test_disconnect_starts_the_grace_period_and_reconnect_ends_it(chat_app):
    token, ticket = await _queue(chat_app, "wobbly")
    store = chat_app.server.app[STORE]
    me = await connect(base_url(chat_app), token)
    await me.call("watch_ticket", {"ticket_id": ticket})
    assert (await store.queue.get("oslo", ticket)).disconnected_at is None
    await me.close()

    async def marked() -> bool:
        return (await store.queue.get("oslo", ticket)).disconnected_at is not None
    await eventually(marked)
    back = await connect(base_url(chat_app), token)
    try:
        ack = await back.call("watch_ticket", {"ticket_id": ticket})
        assert ack["position"] == 1
        t = await store.queue.get("oslo", ticket)
        assert t.disconnected_at is None and t.state == "waiting"
    finally:
        await back.close()


async def test_clinician_in_the_consultation_gets_knock_events(chat_app):
    pair = await consultation(chat_app)
    url = base_url(chat_app)
    doctor = await connect(url, pair.doctor)
    citizen = await connect(url, pair.citizen)
    try:
        await doctor.call("join", {"consultation_id": pair.cid})
        await citizen.call("join", {"consultation_id": pair.cid})
        r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/invites",
                                json={"role": "relative", "ttl_s": 600, "lobby": True}, headers=bearer(pair.doctor))
        invite = (await r.json())["token"]
        guest = await connect(url, invite, display_name="Ola (sønn)")  # spending the invite knocks
        try:
            [knock] = await doctor.wait_for("knock")
            who = await guest.call("whoami")
            assert knock == {"consultation_id": pair.cid, "participant_id": who["participant_id"],
                             "role": "relative", "display_name": "Ola (sønn)"}
        finally:
            await guest.close()
        nurse = await dev_token(chat_app, "nurse", "nurse")  # a REST knock too
        r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/knock", headers=bearer(nurse))
        assert r.status == 202
        await doctor.wait_for("knock", 2)
        assert citizen.got("knock") == []  # the lobby is the clinician's business
    finally:
        await doctor.close()
        await citizen.close()
