"""Role checks on every route, and no cross-tenant access."""

import re

import pytest

from rooms.models import Role
from signaling.api import build_api
from tests.conftest import bearer, dev_token

ROUTES = [r for r in build_api().routes if not r.public]


def _concrete(path: str) -> str:
    path = path.replace("{tenant}", "oslo").replace("{service}", "nettlege")
    return re.sub(r"{(\w+)}", lambda m: f"{m[1][0]}_x", path)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.roles], ids=lambda r: f"{r.method} {r.path}")
async def test_roles_outside_a_route_get_403(app_client, route):
    for role in Role:
        if role in route.roles:
            continue
        token = await dev_token(app_client, f"u-{role.value}", role.value)
        resp = await app_client.request(route.method, _concrete(route.path), headers=bearer(token),
                                        json={} if route.body else None)
        assert resp.status == 403, (role, resp.status)
        assert set(await resp.json()) == {"error", "message"}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_protected_route_needs_a_token(app_client, route):
    resp = await app_client.request(route.method, _concrete(route.path))
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


async def test_tenant_b_sees_nothing_of_tenant_a(app_client):
    kari = await dev_token(app_client, "kari", "citizen", tenant="oslo")
    oslo_doc = await dev_token(app_client, "d-oslo", "clinician", tenant="oslo")
    bergen_doc = await dev_token(app_client, "d-bergen", "clinician", tenant="bergen")
    bergen_nurse = await dev_token(app_client, "n-bergen", "nurse", tenant="bergen")
    bergen_admin = await dev_token(app_client, "a-bergen", "admin", tenant="bergen")
    bergen_booking = await dev_token(app_client, "b-bergen", "booking", tenant="bergen")
    t = await (await app_client.post("/api/v1/tenants/oslo/services/nettlege/queue",
                                     json={"channel": "video", "reason": "r"}, headers=bearer(kari))).json()
    c = await (await app_client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                     headers=bearer(oslo_doc))).json()
    attempts = [
        ("GET", "/api/v1/tenants/oslo/services/nettlege/queue", bergen_doc, None),
        ("POST", "/api/v1/tenants/oslo/services/nettlege/queue/take", bergen_doc, None),
        ("GET", f"/api/v1/tickets/{t['ticket_id']}", bergen_doc, None),
        ("PATCH", f"/api/v1/tickets/{t['ticket_id']}", bergen_nurse, {"priority": "red"}),
        ("DELETE", f"/api/v1/tickets/{t['ticket_id']}", bergen_nurse, None),
        ("GET", f"/api/v1/consultations/{c['id']}", bergen_doc, None),
        ("POST", f"/api/v1/consultations/{c['id']}/end", bergen_doc, {"outcome": "resolved"}),
        ("POST", f"/api/v1/consultations/{c['id']}/invites", bergen_doc, {"role": "relative"}),
        ("POST", f"/api/v1/consultations/{c['id']}/knock", bergen_doc, None),
        ("POST", "/api/v1/consultations", bergen_doc, {"tenant": "oslo", "service": "nettlege"}),
        # pilot statistics, admin settings and audit status, bookings (issue 14)
        ("GET", "/api/v1/tenants/oslo/stats", bergen_admin, None),
        ("GET", "/api/v1/tenants/oslo/stats?format=csv", bergen_admin, None),
        ("GET", "/api/v1/tenants/oslo/services/nettlege/settings", bergen_admin, None),
        ("PUT", "/api/v1/tenants/oslo/services/nettlege/settings", bergen_admin, {"default": "closed"}),
        ("DELETE", "/api/v1/tenants/oslo/services/nettlege/settings", bergen_admin, None),
        ("GET", "/api/v1/tenants/oslo/audit/status", bergen_admin, None),
        ("POST", "/api/v1/bookings", bergen_booking, {"tenant": "oslo", "service": "nettlege", "slot_at": 4e9,
                                                      "host": "d-oslo", "host_name": "D", "citizen": "kari",
                                                      "citizen_name": "K"}),
        ("GET", f"/api/v1/bookings/{c['id']}", bergen_booking, None),
        ("PATCH", f"/api/v1/bookings/{c['id']}", bergen_booking, {"slot_at": 4e9}),
        ("DELETE", f"/api/v1/bookings/{c['id']}", bergen_booking, None),
    ]
    for method, path, token, body in attempts:
        resp = await app_client.request(method, path, headers=bearer(token), json=body)
        assert resp.status == 404, (method, path, resp.status)
    # and tenant A's data is untouched
    assert (await (await app_client.get(f"/api/v1/tickets/{t['ticket_id']}", headers=bearer(kari))).json())[
        "position"] == 1
    got = await (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(oslo_doc))).json()
    assert got["state"] == "waiting" and len(got["participants"]) == 1


async def test_clinician_of_same_tenant_not_in_consultation_sees_nothing(app_client):
    doc1 = await dev_token(app_client, "d1", "clinician")
    doc2 = await dev_token(app_client, "d2", "clinician")
    c = await (await app_client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                     headers=bearer(doc1))).json()
    assert (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(doc2))).status == 404
    assert (await app_client.post(f"/api/v1/consultations/{c['id']}/end", json={"outcome": "resolved"},
                                  headers=bearer(doc2))).status == 404
