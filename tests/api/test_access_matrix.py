"""Role checks on every route, and no cross-tenant access."""

import re

import pytest

from rooms.models import Role
from signaling.api import build_api
from signaling.http import Access
from signaling.identity import identify
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


# --- the access condition each route declares (signaling/http.py Access), probed principal by principal -----

CONSULTATION_ROUTES = [r for r in ROUTES if "{consultation_id}" in r.path and r.access in (Access.PARTICIPANT,
                                                                                           Access.HOST)]


async def _cast(client) -> dict:
    """A consultation with every kind of principal the conditions tell apart."""
    doc = await dev_token(client, "host-doc", "clinician")
    c = await (await client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                  headers=bearer(doc))).json()
    cid = c["id"]
    who = {"host": doc, "outsider": await dev_token(client, "other-doc", "clinician"),
           "other_tenant": await dev_token(client, "bergen-doc", "clinician", tenant="bergen")}
    for name in ("admitted", "lobby", "denied"):
        who[name] = await dev_token(client, f"kari-{name}", "citizen")
        k = await (await client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(who[name]))).json()
        if name != "lobby":
            action = "admit" if name == "admitted" else "deny"
            r = await client.post(f"/api/v1/consultations/{cid}/participants/{k['participant_id']}/{action}",
                                  headers=bearer(doc))
            assert r.status == 200
    inv = await (await client.post(f"/api/v1/consultations/{cid}/invites", json={"role": "relative", "lobby": False},
                                   headers=bearer(doc))).json()
    who["guest"] = (await identify(client.server.app, inv["token"], "Mor")).session_token
    return {"cid": cid, "who": who}


def _consultation_path(path: str, cid: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: cid if m[1] == "consultation_id" else f"{m[1][0]}_x", path)


@pytest.mark.parametrize("route", CONSULTATION_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_consultation_routes_enforce_their_declared_condition(app_client, route):
    cast = await _cast(app_client)
    path = _consultation_path(route.path, cast["cid"])
    expected = {"outsider": 404, "other_tenant": 404, "lobby": 403, "denied": 403}
    if route.access is Access.HOST:
        expected.update({"admitted": 403, "guest": 403})
    for name, status in expected.items():
        r = await app_client.request(route.method, path, headers=bearer(cast["who"][name]),
                                     json={} if route.body else None)
        assert r.status == status, (name, r.status, await r.text())
        assert set(await r.json()) == {"error", "message"}
    # and the principals the condition lets through get past it (to the handler's own checks)
    allowed = ["host"] if route.access is Access.HOST else ["host", "admitted", "guest"]
    for name in allowed:
        r = await app_client.request(route.method, path, headers=bearer(cast["who"][name]),
                                     json={} if route.body else None)
        body = await r.json() if r.content_type == "application/json" else {}
        assert r.status < 400 or body.get("error") not in ("not_admitted", "forbidden", "consultation_not_found"), (
            name, r.status, body)


async def test_session_tokens_reach_only_routes_marked_for_them(app_client):
    cast = await _cast(app_client)
    guest = cast["who"]["guest"]
    for route in ROUTES:
        if route.scoped:
            continue
        path = _consultation_path(_concrete(route.path), cast["cid"])
        r = await app_client.request(route.method, path, headers=bearer(guest), json={} if route.body else None)
        assert r.status == 403, (route.method, route.path, r.status)


def test_docs_security_md_holds_the_generated_tables():
    from pathlib import Path

    from signaling.access_table import render

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert render() in doc, "docs/security.md is stale: paste `python -m signaling.access_table` into it"
