"""Continue a waiting ticket by phone ("Ring meg heller"): same place, phone sealed at rest, audited, owner only."""

from rooms.keys import Keys
from signaling.appkeys import STORE
from tests.conftest import bearer, dev_token

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def _join(client, token: str, **body: str) -> dict:
    resp = await client.post(Q, json={"channel": "video", "reason": "feber", **body}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_a_waiting_video_ticket_becomes_phone_and_keeps_its_place(app_client):
    a, b = await dev_token(app_client, "a", "citizen"), await dev_token(app_client, "b", "citizen")
    doctor = await dev_token(app_client, "d", "clinician")
    await _join(app_client, a)
    tb = await _join(app_client, b, channel="chat")
    resp = await app_client.put(f"/api/v1/tickets/{tb['ticket_id']}/channel",
                                json={"channel": "phone", "callback_phone": "+47 912 34 567"}, headers=bearer(b))
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["channel"] == "phone" and got["callback_phone"] == "+47 912 34 567"
    assert got["position"] == 2 and got["state"] == "waiting"
    assert got["enqueued_at"] == tb["enqueued_at"]

    # the dashboard's list shows the channel and number, in the same order
    queue = await (await app_client.get(Q, headers=bearer(doctor))).json()
    assert [(t["ticket_id"], t["channel"]) for t in queue][1] == (tb["ticket_id"], "phone")
    assert queue[1]["callback_phone"] == "+47 912 34 567"

    store = app_client.server.app[STORE]
    raw = await store.redis.hgetall(Keys("oslo").ticket(tb["ticket_id"]))
    stored = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
              for k, v in raw.items()}
    assert stored["channel"] == "phone"
    assert "912" not in stored["callback_phone"] and stored["callback_phone"]  # sealed at rest

    entries = [e.fields for e in await store.audit.entries("oslo")]
    switched = [e for e in entries if e.get("action") == "ticket.channel"]
    assert len(switched) == 1
    assert switched[0]["ticket_id"] == tb["ticket_id"] and switched[0]["actor"] == "b"
    assert switched[0]["channel"] == "phone" and "912" not in str(switched[0])

    # taken as a phone ticket: the clinician calls (the take answer says phone)
    taken = await (await app_client.post(Q + "/take", headers=bearer(doctor))).json()
    assert taken["ticket"]["channel"] == "video"
    taken = await (await app_client.post(Q + "/take", headers=bearer(doctor))).json()
    assert taken["ticket"]["channel"] == "phone"


async def test_the_number_given_at_join_is_used_when_none_is_sent(app_client):
    a = await dev_token(app_client, "a", "citizen")
    ta = await _join(app_client, a, callback_phone="+4791234567")
    resp = await app_client.put(f"/api/v1/tickets/{ta['ticket_id']}/channel", json={"channel": "phone"},
                                headers=bearer(a))
    assert resp.status == 200
    assert (await resp.json())["callback_phone"] == "+4791234567"


async def test_bad_input_and_other_callers_get_4xx(app_client):
    a, b = await dev_token(app_client, "a", "citizen"), await dev_token(app_client, "b", "citizen")
    doctor = await dev_token(app_client, "d", "clinician")
    bergen = await dev_token(app_client, "a", "citizen", tenant="bergen")
    ta = await _join(app_client, a)
    path = f"/api/v1/tickets/{ta['ticket_id']}/channel"

    async def put(token: str, body: object) -> tuple[int, dict]:
        r = await app_client.put(path, json=body, headers=bearer(token))
        return r.status, await r.json()

    status, body = await put(a, {"channel": "phone"})
    assert (status, body["error"]) == (422, "callback_phone_required")
    for bad in ({"channel": "phone", "callback_phone": "ring meg"}, {"channel": "fax", "callback_phone": "+4791234567"},
                {"channel": "phone", "callback_phone": "+4791234567", "extra": 1}, {}):
        status, body = await put(a, bad)
        assert status == 422 and set(body) == {"error", "message"}, bad
    assert (await put(b, {"channel": "phone", "callback_phone": "+4791234567"}))[0] == 404  # not the owner
    assert (await put(bergen, {"channel": "phone", "callback_phone": "+4791234567"}))[0] == 404  # other tenant
    assert (await put(doctor, {"channel": "phone", "callback_phone": "+4791234567"}))[0] == 403  # staff: not theirs
    unchanged = await (await app_client.get(f"/api/v1/tickets/{ta['ticket_id']}", headers=bearer(a))).json()
    assert unchanged["channel"] == "video" and unchanged["callback_phone"] is None

    # a ticket that no longer waits is not switched
    await app_client.post(Q + "/take", headers=bearer(doctor))
    status, body = await put(a, {"channel": "phone", "callback_phone": "+4791234567"})
    assert (status, body["error"]) == (409, "ticket_not_waiting")
