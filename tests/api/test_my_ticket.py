"""GET /api/v1/me/ticket: a citizen on a second device (or after clearing the tab) finds the waiting ticket
instead of only a 409 already_queued; nobody else's ticket, another tenant's never."""

from tests.conftest import bearer, dev_token

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def test_second_device_finds_my_waiting_ticket(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    none = await app_client.get("/api/v1/me/ticket", headers=bearer(kari))
    assert none.status == 404 and (await none.json())["error"] == "no_ticket"
    joined = await (await app_client.post(Q, json={"channel": "chat", "reason": "hoste"}, headers=bearer(kari))).json()
    again = await app_client.post(Q, json={"channel": "chat", "reason": "hoste"}, headers=bearer(kari))
    assert again.status == 409
    # A fresh token for the same person (another device logs in again).
    other_device = await dev_token(app_client, "kari", "citizen")
    mine = await app_client.get("/api/v1/me/ticket", headers=bearer(other_device))
    assert mine.status == 200
    body = await mine.json()
    assert body["ticket_id"] == joined["ticket_id"] and body["position"] == 1 and body["state"] == "waiting"
    # Someone else, and the same subject name in another tenant, see nothing.
    ola = await dev_token(app_client, "ola", "citizen")
    assert (await app_client.get("/api/v1/me/ticket", headers=bearer(ola))).status == 404
    bergen = await dev_token(app_client, "kari", "citizen", tenant="bergen")
    assert (await app_client.get("/api/v1/me/ticket", headers=bearer(bergen))).status == 404
    # After leaving the queue there is no ticket to find.
    assert (await app_client.delete(f"/api/v1/tickets/{joined['ticket_id']}", headers=bearer(kari))).status == 204
    assert (await app_client.get("/api/v1/me/ticket", headers=bearer(other_device))).status == 404


async def test_my_ticket_needs_a_login_and_a_queuer_role(app_client):
    assert (await app_client.get("/api/v1/me/ticket")).status == 401
    doctor = await dev_token(app_client, "lege", "clinician")
    assert (await app_client.get("/api/v1/me/ticket", headers=bearer(doctor))).status == 403
