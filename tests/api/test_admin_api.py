"""The admin's service settings (opening hours, closures) and the audit trail's status."""

import time
from datetime import date, timedelta

from rooms.stats import oslo_day
from tests.conftest import bearer, dev_token

SETTINGS = "/api/v1/tenants/oslo/services/nettlege/settings"


async def _service(client, service="nettlege"):
    rows = await (await client.get("/api/v1/services?tenant=oslo")).json()
    return next(r for r in rows if r["service"] == service)


async def test_settings_change_is_served_by_get_services_and_closes_the_queue(app_client):
    admin = await dev_token(app_client, "adm", "admin")
    kari = await dev_token(app_client, "kari", "citizen")
    got = await (await app_client.get(SETTINGS, headers=bearer(admin))).json()
    assert got["source"] == "config" and got["opening_hours"]["mon"] == "00:00-24:00" and got["closures"] == []
    assert (await _service(app_client))["open"] is True

    today = oslo_day(time.time())
    tomorrow = (date.fromisoformat(today) + timedelta(days=1)).isoformat()
    resp = await app_client.put(SETTINGS, headers=bearer(admin),
                                json={"default": "08:00-16:00", "sat": "closed", "sun": "closed",
                                      "closures": [tomorrow, today, today]})
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["source"] == "runtime" and got["closures"] == [today, tomorrow]
    assert got["opening_hours"]["sat"] == "closed" and got["opening_hours"]["mon"] == "08:00-16:00"
    listed = await _service(app_client)
    assert listed["opening_hours"]["sat"] == "closed" and listed["closures"] == [today, tomorrow]
    assert listed["open"] is False and "116117" in listed["closed_message"]
    # the other service keeps the config file's hours
    assert (await _service(app_client, "legevakt"))["open"] is True
    # a closure today: joining the queue is refused
    resp = await app_client.post("/api/v1/tenants/oslo/services/nettlege/queue", headers=bearer(kari),
                                 json={"channel": "video", "reason": "hoste"})
    assert resp.status == 409 and (await resp.json())["error"] == "service_closed"

    resp = await app_client.delete(SETTINGS, headers=bearer(admin))
    assert (await resp.json())["source"] == "config"
    assert (await _service(app_client))["open"] is True
    resp = await app_client.post("/api/v1/tenants/oslo/services/nettlege/queue", headers=bearer(kari),
                                 json={"channel": "video", "reason": "hoste"})
    assert resp.status == 201


async def test_settings_changes_are_audited(app_client):
    from signaling.appkeys import STORE

    admin = await dev_token(app_client, "adm", "admin")
    await app_client.put(SETTINGS, headers=bearer(admin), json={"default": "24/7"})
    await app_client.delete(SETTINGS, headers=bearer(admin))
    entries = await app_client.server.app[STORE].audit.entries("oslo")
    changes = [e.fields for e in entries if e.fields["action"] == "settings.changed"]
    assert [(f["actor"], f["service"], f.get("reset")) for f in changes] == [("adm", "nettlege", None),
                                                                            ("adm", "nettlege", "1")]


async def test_bad_settings_are_refused_and_change_nothing(app_client):
    admin = await dev_token(app_client, "adm", "admin")
    many = [(date(2027, 1, 1) + timedelta(days=i)).isoformat() for i in range(101)]
    for body in ({"default": "8-16"}, {"mon": "16:00-08:00"}, {"closures": ["31.12.2026"]},
                 {"closures": ["2026-02-30"]}, {"closures": [20261224]}, {"closures": many},
                 {"default": "24/7", "holidays": []}, {"default": 8}):
        resp = await app_client.put(SETTINGS, headers=bearer(admin), json=body)
        assert resp.status == 422, body
        got = await resp.json()
        assert set(got) == {"error", "message"} and got["error"] == "invalid_body"
        assert got["message"].split(":")[0].split(".")[0] in body  # names the field
    assert (await (await app_client.get(SETTINGS, headers=bearer(admin))).json())["source"] == "config"
    resp = await app_client.get("/api/v1/tenants/oslo/services/nope/settings", headers=bearer(admin))
    assert resp.status == 404


async def test_only_the_tenants_admin_changes_settings_or_reads_audit_status(app_client):
    for role in ("citizen", "clinician", "nurse", "operator", "booking"):
        token = await dev_token(app_client, f"u-{role}", role)
        assert (await app_client.put(SETTINGS, headers=bearer(token), json={})).status == 403
        assert (await app_client.get("/api/v1/tenants/oslo/audit/status", headers=bearer(token))).status == 403
    bergen = await dev_token(app_client, "adm-b", "admin", tenant="bergen")
    assert (await app_client.put(SETTINGS, headers=bearer(bergen), json={"default": "closed"})).status == 404
    assert (await app_client.get("/api/v1/tenants/oslo/audit/status", headers=bearer(bergen))).status == 404
    assert (await _service(app_client))["open"] is True


async def test_audit_status_reports_an_intact_trail(app_client):
    admin = await dev_token(app_client, "adm", "admin")
    await app_client.put(SETTINGS, headers=bearer(admin), json={"default": "24/7"})
    resp = await app_client.get("/api/v1/tenants/oslo/audit/status", headers=bearer(admin))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["intact"] is True and body["problems"] == [] and body["problem_count"] == 0


async def test_audit_status_shows_a_removed_entry(app_client):
    from rooms.keys import Keys
    from signaling.appkeys import STORE
    from signaling.audit_wiring import AUDIT_SEALER

    app = app_client.server.app
    admin = await dev_token(app_client, "adm", "admin")
    for hours in ("24/7", "08:00-22:00", "24/7"):
        await app_client.put(SETTINGS, headers=bearer(admin), json={"default": hours})
    await app[AUDIT_SEALER].seal("oslo")
    first = (await app[STORE].audit.entries("oslo"))[0]
    await app[STORE].redis.xdel(Keys("oslo").audit(), first.id)
    body = await (await app_client.get("/api/v1/tenants/oslo/audit/status", headers=bearer(admin))).json()
    assert body["intact"] is False and body["problem_count"] >= 1
