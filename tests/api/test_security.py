"""The findings of the attacker-minded review (issue 12), each closed and kept closed.

Invites never carry host powers and staff join with their own identity (2); the lobby and denied see
nothing (3); staff ticket reads are audited for the citizen (4); the SMS text is the server's (6); odd input
is a clean 4xx (11); headers and static files (12); session tokens are short-lived and revocable (14);
knock spam (16).
"""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rooms.models import Principal, Role
from signaling import policy
from signaling.app import build_app
from signaling.auth import SESSION_TOKEN_TTL_S, AuthError
from signaling.identity import identify
from tests.conftest import bearer, dev_token, hold_rate_windows

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def _consultation(client: TestClient, token: str) -> dict:
    r = await client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "legevakt"},
                          headers=bearer(token))
    assert r.status == 201, await r.text()
    return await r.json()


async def _invite(client: TestClient, token: str, cid: str, role: str, lobby: bool = True) -> dict:
    r = await client.post(f"/api/v1/consultations/{cid}/invites", json={"role": role, "lobby": lobby},
                          headers=bearer(token))
    assert r.status == 201, await r.text()
    return await r.json()


# --- 2: invites never carry host powers; staff accept with their own identity -------------------------


@pytest.mark.parametrize("role", ["clinician", "nurse"])
async def test_a_staff_invite_cannot_be_spent_anonymously(app_client, role):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    inv = await _invite(app_client, doc, c["id"], role)
    with pytest.raises(AuthError) as refused:
        await identify(app_client.server.app, inv["token"], "Falsk lege")
    assert refused.value.code == "login_required"
    # not spent: the right person can still accept it, with their own identity
    own = await dev_token(app_client, f"hpr-{role}", role)
    r = await app_client.post(f"/api/v1/invites/{inv['token']}/accept", headers=bearer(own))
    assert r.status == 200, await r.text()
    accepted = await r.json()
    assert accepted["consultation_id"] == c["id"] and accepted["state"] == "lobby"
    got = await (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(doc))).json()
    me = next(p for p in got["participants"] if p["id"] == accepted["participant_id"])
    assert me["role"] == role


async def test_a_nurse_cannot_accept_a_clinician_invite(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    inv = await _invite(app_client, doc, c["id"], "clinician")
    nurse = await dev_token(app_client, "n1", "nurse")
    r = await app_client.post(f"/api/v1/invites/{inv['token']}/accept", headers=bearer(nurse))
    assert r.status == 403 and (await r.json())["error"] == "invite_role_mismatch"
    citizen = await dev_token(app_client, "kari", "citizen")
    r = await app_client.post(f"/api/v1/invites/{inv['token']}/accept", headers=bearer(citizen))
    assert r.status == 403
    bergen = await dev_token(app_client, "d-bergen", "clinician", tenant="bergen")
    r = await app_client.post(f"/api/v1/invites/{inv['token']}/accept", headers=bearer(bergen))
    assert r.status == 404
    got = await (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(doc))).json()
    assert [p["role"] for p in got["participants"]] == ["clinician"]  # nobody joined


async def test_a_guest_session_token_never_has_host_powers(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    inv = await _invite(app_client, doc, c["id"], "relative", lobby=False)
    guest = await identify(app_client.server.app, inv["token"], "Mor")
    s = guest.session_token
    assert s and guest.principal.issuer == policy.INVITE_ISSUER
    assert (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(s))).status == 200
    attempts = [
        ("GET", f"/api/v1/consultations/{c['id']}/transcript", None),
        ("POST", f"/api/v1/consultations/{c['id']}/invites", {"role": "clinician"}),
        ("POST", f"/api/v1/consultations/{c['id']}/end", {"outcome": "resolved"}),
        ("POST", f"/api/v1/consultations/{c['id']}/sms", {"phone": "+47 912 34 567", "token": inv["token"]}),
    ]
    for method, path, body in attempts:
        r = await app_client.request(method, path, json=body, headers=bearer(s))
        assert r.status == 403, (path, r.status)
    # even a session principal carrying a host role is no host when it came through an invite
    forged = Principal(subject="guest:x", role=Role.CLINICIAN, tenant="oslo", issuer=policy.INVITE_ISSUER,
                       consultation_id=c["id"], participant_id="p_x")
    assert not policy.is_host(forged)


@pytest.mark.parametrize("inviter", sorted(policy.HOSTS))
async def test_who_may_invite_whom_is_the_policy_table(app_client, inviter):
    host = await dev_token(app_client, f"h-{inviter}", inviter)
    c = await _consultation(app_client, host)
    for invitee in Role:
        r = await app_client.post(f"/api/v1/consultations/{c['id']}/invites", json={"role": invitee.value},
                                  headers=bearer(host))
        expected = 201 if policy.may_invite(Role(inviter), invitee) else 422
        assert r.status == expected, (inviter, invitee, r.status)


# --- 3: the lobby and the denied see nothing; the access log is the citizen's own ---------------------


async def test_lobby_and_denied_cannot_read_the_consultation_or_its_audit_trail(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    cid = c["id"]
    kari = await dev_token(app_client, "kari", "citizen")
    knock = await app_client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(kari))
    assert knock.status == 202
    r = await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(kari))
    assert r.status == 403 and (await r.json())["error"] == "not_admitted"
    assert await (await app_client.get("/api/v1/me/access-log", headers=bearer(kari))).json() == []
    pid = (await knock.json())["participant_id"]
    await app_client.post(f"/api/v1/consultations/{cid}/participants/{pid}/deny", headers=bearer(doc))
    assert (await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(kari))).status == 403
    assert await (await app_client.get("/api/v1/me/access-log", headers=bearer(kari))).json() == []
    # an admitted participant who is not the patient (a relative) is not shown the patient's trail
    rel = await dev_token(app_client, "rel", "relative")
    k2 = await (await app_client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(rel))).json()
    await app_client.post(f"/api/v1/consultations/{cid}/participants/{k2['participant_id']}/admit",
                          headers=bearer(doc))
    assert (await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(rel))).status == 200
    assert await (await app_client.get("/api/v1/me/access-log", headers=bearer(rel))).json() == []


# --- 4: staff reads of tickets are audited and shown to the citizen ------------------------------------


async def test_staff_ticket_reads_show_in_the_citizens_access_log(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    t = await (await app_client.post(Q, json={"channel": "phone", "reason": "vondt i halsen",
                                              "callback_phone": "+47 912 34 567"}, headers=bearer(kari))).json()
    nurse = await dev_token(app_client, "n-1", "nurse")
    doc = await dev_token(app_client, "hpr-7", "clinician")
    listed = await app_client.get(Q, headers=bearer(nurse))
    assert listed.status == 200 and (await listed.json())[0]["reason"] == "vondt i halsen"
    await app_client.get(Q, headers=bearer(nurse))  # polled again: one entry per window, not per poll
    assert (await app_client.get(f"/api/v1/tickets/{t['ticket_id']}", headers=bearer(doc))).status == 200
    await app_client.get(f"/api/v1/tickets/{t['ticket_id']}", headers=bearer(kari))  # her own read: not audited
    log = await (await app_client.get("/api/v1/me/access-log", headers=bearer(kari))).json()
    reads = [(e["action"], e["actor"], e["ticket_id"]) for e in log]
    assert reads == [("ticket.read", "n-1", t["ticket_id"]), ("ticket.read", "hpr-7", t["ticket_id"])]
    # another citizen sees none of it
    ola = await dev_token(app_client, "ola", "citizen")
    assert await (await app_client.get("/api/v1/me/access-log", headers=bearer(ola))).json() == []


# --- 6: the SMS text is composed by the server ---------------------------------------------------------


@pytest.fixture
async def sms_gateway():
    sent: list[dict] = []

    async def receive(request: web.Request) -> web.Response:
        sent.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/sms", receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/sms")), sent
    await server.close()


async def test_sms_text_comes_from_the_tenant_template_and_public_url(make_config, redis_url, sms_gateway):
    url, sent = sms_gateway
    config = make_config(sms_webhook_url=url, public_url="https://video.oslo.test")
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        op = await dev_token(client, "op1", "operator")
        c = await _consultation(client, op)
        inv = await _invite(client, op, c["id"], "citizen")
        phone = "+47 912 34 567"
        r = await client.post(f"/api/v1/consultations/{c['id']}/sms", json={"phone": phone, "token": inv["token"]},
                              headers={**bearer(op), "Host": "evil.example"})
        assert r.status == 200 and (await r.json()) == {"sent": True}
        link = f"https://video.oslo.test/#/invite/{inv['token']}"
        assert sent == [{"to": phone, "text": f"Oslo kommune: Her er lenken til videokonsultasjonen din: {link}"}]
        # no client text, no foreign link, no invite of another consultation
        other = await _consultation(client, op)
        foreign = await _invite(client, op, other["id"], "citizen")
        for body in ({"phone": phone, "token": inv["token"], "text": "Klikk her: https://evil.example"},
                     {"phone": phone, "url": "https://evil.example/#/invite/x"},
                     {"phone": phone, "token": foreign["token"]},
                     {"phone": phone}):
            bad = await client.post(f"/api/v1/consultations/{c['id']}/sms", json=body, headers=bearer(op))
            assert bad.status == 422, body
        assert len(sent) == 1
    finally:
        await client.close()


# --- 11: odd input is a clean 4xx ----------------------------------------------------------------------


async def test_deep_json_and_lone_surrogates_are_400_not_500(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    h = {**bearer(kari), "Content-Type": "application/json"}
    for raw in (b'{"reason": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
                b'{"channel": "video", "reason": "\\ud800"}',
                b'{"channel": "video", "reason": "x", "\\udfff": 1}'):
        r = await app_client.post(Q, data=raw, headers=h)
        assert r.status == 400 and (await r.json())["error"] == "bad_json", raw[:40]


async def test_a_long_static_path_is_404(app_client):
    for path in ("/static/js/" + "a" * 5000 + ".js", "/static/" + "a/" * 3000, "/" + "x" * 8000):
        r = await app_client.get(path)
        assert r.status in (404, 414), (path[:30], r.status)


# --- 12: headers and static files ----------------------------------------------------------------------


async def test_security_headers_everywhere_and_no_store_on_the_api(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    for path, headers in (("/api/v1/services", {}), ("/api/v1/me/access-log", bearer(kari)),
                          ("/no-such-page", {}), ("/static/js/nope.js", {}), ("/api/v1/nope", {})):
        r = await app_client.get(path, headers=headers)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and " ws: " not in csp and "wss: " not in csp, path
        if path.startswith("/api/"):
            assert r.headers["Cache-Control"] == "no-store", path
        assert "Strict-Transport-Security" not in r.headers  # plain http
    # the chat's long-polling transport carries messages too
    r = await app_client.get("/socket.io/?EIO=4&transport=polling")
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"


async def test_static_serves_only_the_built_client(app_client):
    assert (await app_client.get("/static/js/app.js")).status == 200
    assert (await app_client.get("/static/css/app.css")).status == 200
    for path in ("/static/package.json", "/static/README.md", "/static/test/sdp.test.mjs", "/static/build.mjs",
                 "/static/node_modules/socket.io-client/package.json", "/static/../pyproject.toml"):
        assert (await app_client.get(path)).status == 404, path


async def test_csp_connect_src_names_the_configured_origins_only(make_config):
    config = make_config(public_url="https://video.oslo.test", allowed_origins=["https://node-b.oslo.test"])
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        csp = (await client.get("/")).headers["Content-Security-Policy"]
        connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
        # this origin, the configured ones and the deployment's live nodes (where signal_url may point)
        assert connect == ["'self'", "https://video.oslo.test", "wss://video.oslo.test", "https://node-b.oslo.test",
                           "wss://node-b.oslo.test", "http://127.0.0.1:8080", "ws://127.0.0.1:8080"]
    finally:
        await client.close()


# --- 14: short-lived, revocable session tokens ---------------------------------------------------------


async def test_session_tokens_are_short_lived_and_revoked_by_deny_and_end(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    app = app_client.server.app
    a = await identify(app, (await _invite(app_client, doc, c["id"], "relative"))["token"], "A")
    b = await identify(app, (await _invite(app_client, doc, c["id"], "interpreter", lobby=False))["token"], "B")
    claims = jwt.decode(a.session_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == SESSION_TOKEN_TTL_S <= 15 * 60
    await app_client.post(f"/api/v1/consultations/{c['id']}/participants/{a.participant.id}/deny",
                          headers=bearer(doc))
    r = await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(a.session_token))
    assert r.status == 401 and (await r.json())["error"] == "denied"
    assert (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(b.session_token))).status == 200
    await app_client.post(f"/api/v1/consultations/{c['id']}/end", json={"outcome": "resolved"}, headers=bearer(doc))
    r = await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(b.session_token))
    assert r.status == 401 and (await r.json())["error"] == "consultation_ended"
    with pytest.raises(AuthError):
        await identify(app, b.session_token)  # the chat and the signaling socket refuse it too


async def test_subjects_are_namespaced_by_issuer(make_config):
    from aiohttp import ClientSession

    from signaling.auth import Authenticator

    config = make_config(issuers=[
        {"issuer": "https://helseid.test", "jwks_url": "http://127.0.0.1:1/jwks", "audience": "a", "role": "clinician",
         "tenant": "oslo"},
        {"issuer": "https://idporten.test", "jwks_url": "http://127.0.0.1:1/jwks", "audience": "a",
         "role": "citizen", "tenant": "oslo"}])
    async with ClientSession() as session:
        auth = Authenticator(config, session)
        claims = {"sub": "12345", "name": "X", "exp": int(time.time()) + 60}
        one = auth._external(config.issuers[0], claims)
        two = auth._external(config.issuers[1], claims)
    assert one.subject != two.subject and one.subject.endswith("|12345")


# --- 16: knock spam ------------------------------------------------------------------------------------


async def test_no_reknock_after_deny_and_knocks_are_rate_limited_per_consultation(app_client):
    from rooms.service import KNOCKS_PER_MINUTE

    hold_rate_windows(app_client.server.app)  # every knock in one minute's window, however slow the machine
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    cid = c["id"]
    kari = await dev_token(app_client, "kari", "citizen")
    pid = (await (await app_client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(kari))).json())[
        "participant_id"]
    await app_client.post(f"/api/v1/consultations/{cid}/participants/{pid}/deny", headers=bearer(doc))
    again = await app_client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(kari))
    assert again.status == 403 and (await again.json())["error"] == "denied"
    # New knocks until the limit answers; kari's knock counted, her refused second one did not.
    statuses = []
    for i in range(KNOCKS_PER_MINUTE):
        tok = await dev_token(app_client, f"spam-{i}", "citizen")
        r = await app_client.post(f"/api/v1/consultations/{cid}/knock", headers=bearer(tok))
        statuses.append(r.status)
    assert statuses == [202] * (KNOCKS_PER_MINUTE - 1) + [429]
    assert (await r.json())["error"] == "rate_limited" and int(r.headers["Retry-After"]) > 0
    got = await (await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(doc))).json()
    assert len(got["participants"]) == len(statuses) - 1 + 2  # the host, kari and the knocks let through


async def test_a_knock_does_not_add_the_consultation_to_my_consultations(app_client):
    from signaling.appkeys import STORE

    store = app_client.server.app[STORE]
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    for name, action in (("kari", "admit"), ("ola", "deny"), ("per", None)):
        tok = await dev_token(app_client, name, "citizen")
        k = await (await app_client.post(f"/api/v1/consultations/{c['id']}/knock", headers=bearer(tok))).json()
        assert c["id"] not in await store.consultations.of_subject("oslo", name)
        if action:
            await app_client.post(f"/api/v1/consultations/{c['id']}/participants/{k['participant_id']}/{action}",
                                  headers=bearer(doc))
        mine = await store.consultations.of_subject("oslo", name)
        assert (c["id"] in mine) is (action == "admit"), name
    # a guest invite into the lobby likewise; one that admits at once does add it
    lobby = await identify(app_client.server.app, (await _invite(app_client, doc, c["id"], "relative"))["token"])
    direct = await identify(app_client.server.app,
                            (await _invite(app_client, doc, c["id"], "interpreter", lobby=False))["token"])
    assert c["id"] not in await store.consultations.of_subject("oslo", lobby.principal.subject)
    assert c["id"] in await store.consultations.of_subject("oslo", direct.principal.subject)


async def test_a_participant_cannot_accept_a_second_place(app_client):
    doc = await dev_token(app_client, "d1", "clinician")
    c = await _consultation(app_client, doc)
    inv = await _invite(app_client, doc, c["id"], "clinician")
    r = await app_client.post(f"/api/v1/invites/{inv['token']}/accept", headers=bearer(doc))
    assert r.status == 409 and (await r.json())["error"] == "already_participant"
    got = await (await app_client.get(f"/api/v1/consultations/{c['id']}", headers=bearer(doc))).json()
    assert len(got["participants"]) == 1
