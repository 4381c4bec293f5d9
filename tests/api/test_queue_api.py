"""Queue and ticket routes: join, position, leave, triage, take next, and the closed-service message."""

from tests.conftest import bearer, dev_token

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def test_services_are_public_with_open_state_and_queue_length(app_client):
    citizen = await dev_token(app_client, "kari", "citizen")
    await app_client.post(Q, json={"channel": "chat", "reason": "vondt i halsen"}, headers=bearer(citizen))
    resp = await app_client.get("/api/v1/services")
    assert resp.status == 200
    services = {(s["tenant"], s["service"]): s for s in await resp.json()}
    assert services[("oslo", "nettlege")]["open"] is True
    assert services[("oslo", "nettlege")]["queue_length"] == 1
    assert services[("oslo", "stengt")]["open"] is False
    assert "116117" in services[("oslo", "stengt")]["closed_message"]
    assert services[("bergen", "nettlege")]["queue_length"] == 0


async def test_citizen_joins_sees_place_and_leaves(app_client):
    a = await dev_token(app_client, "a", "citizen")
    b = await dev_token(app_client, "b", "citizen")
    ra = await app_client.post(Q, json={"channel": "video", "reason": "feber"}, headers=bearer(a))
    assert ra.status == 201
    ta = await ra.json()
    assert ta["position"] == 1 and ta["eta_s"] == 0 and ta["priority"] == "green"
    rb = await app_client.post(Q, json={"channel": "phone", "reason": "utslett", "callback_phone": "+47 912 34 567"},
                               headers=bearer(b))
    tb = await rb.json()
    assert tb["position"] == 2 and tb["eta_s"] == 600 and tb["callback_phone"] == "+47 912 34 567"
    # a second ticket for the same service is refused, the first stays
    again = await app_client.post(Q, json={"channel": "video", "reason": "feber"}, headers=bearer(a))
    assert again.status == 409 and (await again.json())["error"] == "already_queued"
    # someone else's ticket is invisible
    assert (await app_client.get(f"/api/v1/tickets/{ta['ticket_id']}", headers=bearer(b))).status == 404
    assert (await app_client.delete(f"/api/v1/tickets/{ta['ticket_id']}", headers=bearer(a))).status == 204
    mine = await (await app_client.get(f"/api/v1/tickets/{tb['ticket_id']}", headers=bearer(b))).json()
    assert mine["position"] == 1
    left = await app_client.delete(f"/api/v1/tickets/{ta['ticket_id']}", headers=bearer(a))
    assert left.status == 409


async def test_closed_service_gives_opening_hours_and_emergency_numbers(app_client):
    a = await dev_token(app_client, "a", "citizen")
    resp = await app_client.post("/api/v1/tenants/oslo/services/stengt/queue",
                                 json={"channel": "video", "reason": "feber"}, headers=bearer(a))
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "service_closed"
    assert "116117" in body["message"] and "113" in body["message"] and "stengt" in body["message"]


async def test_nurse_sets_priority_and_clinician_takes_in_order(app_client):
    nurse = await dev_token(app_client, "n1", "nurse")
    doctor = await dev_token(app_client, "d1", "clinician")
    citizens = [await dev_token(app_client, f"c{i}", "citizen") for i in range(3)]
    tickets = []
    for tok in citizens:
        r = await app_client.post(Q, json={"channel": "video", "reason": "r"}, headers=bearer(tok))
        tickets.append((await r.json())["ticket_id"])
    urgent = await app_client.post(Q, json={"channel": "video", "reason": "pustebesvær", "priority": "red"},
                                   headers=bearer(nurse))
    assert urgent.status == 201
    r = await app_client.patch(f"/api/v1/tickets/{tickets[2]}", json={"priority": "yellow"}, headers=bearer(nurse))
    assert r.status == 200 and (await r.json())["position"] == 2
    listing = await (await app_client.get(Q, headers=bearer(doctor))).json()
    assert [t["priority"] for t in listing] == ["red", "yellow", "green", "green"]
    assert listing[0]["owner_name"] == "Navn n1"
    order = []
    for _ in range(4):
        r = await app_client.post(f"{Q}/take", headers=bearer(doctor))
        assert r.status == 200
        body = await r.json()
        order.append(body["ticket_id"])
        assert body["consultation"]["state"] == "waiting"
    assert order[1:] == [tickets[2], tickets[0], tickets[1]]
    empty = await app_client.post(f"{Q}/take", headers=bearer(doctor))
    assert empty.status == 204


async def test_taken_ticket_owner_is_admitted_participant(app_client):
    citizen = await dev_token(app_client, "kari", "citizen")
    doctor = await dev_token(app_client, "d1", "clinician")
    t = await (await app_client.post(Q, json={"channel": "video", "reason": "r"}, headers=bearer(citizen))).json()
    taken = await (await app_client.post(f"{Q}/take", headers=bearer(doctor))).json()
    mine = await (await app_client.get(f"/api/v1/tickets/{t['ticket_id']}", headers=bearer(citizen))).json()
    assert mine["state"] == "taken" and mine["consultation_id"] == taken["consultation_id"]
    c = await app_client.get(f"/api/v1/consultations/{taken['consultation_id']}", headers=bearer(citizen))
    assert c.status == 200
    body = await c.json()
    assert body["me"] and {p["role"] for p in body["participants"]} == {"citizen", "clinician"}
