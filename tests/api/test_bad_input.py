"""Bad input gets a 4xx `{"error", "message"}` and changes nothing."""

import pytest

from tests.conftest import bearer, dev_token, hold_rate_windows

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def _queue_length(client) -> int:
    services = await (await client.get("/api/v1/services?tenant=oslo")).json()
    return next(s["queue_length"] for s in services if s["service"] == "nettlege")


@pytest.mark.parametrize("body, status, code", [
    ({"channel": "video"}, 422, "invalid_body"),                                   # missing reason
    ({"channel": "fax", "reason": "x"}, 422, "invalid_body"),                      # unknown channel
    ({"channel": "video", "reason": 42}, 422, "invalid_body"),                     # wrong type
    ({"channel": "video", "reason": "x", "extra": 1}, 422, "invalid_body"),        # unknown field
    ({"channel": "video", "reason": "x" * 201}, 422, "invalid_body"),              # too long
    ({"channel": "video", "reason": "   "}, 422, "invalid_body"),                  # blank
    ({"channel": "phone", "reason": "x"}, 422, "callback_phone_required"),
    ({"channel": "phone", "reason": "x", "callback_phone": "call me"}, 422, "invalid_body"),
    ({"channel": "video", "reason": "x", "priority": "red"}, 403, "forbidden"),    # citizens can't triage
    (["channel", "video"], 422, "invalid_body"),                                    # not an object
])
async def test_join_queue_rejects_bad_bodies(app_client, body, status, code):
    token = await dev_token(app_client, "a", "citizen")
    resp = await app_client.post(Q, json=body, headers=bearer(token))
    assert resp.status == status
    err = await resp.json()
    assert err["error"] == code and err["message"]
    assert await _queue_length(app_client) == 0


async def test_validation_message_does_not_echo_input(app_client):
    token = await dev_token(app_client, "a", "citizen")
    resp = await app_client.post(Q, json={"channel": "phone", "reason": "x", "callback_phone": "12345678901234567890"},
                                 headers=bearer(token))
    assert resp.status == 422 and "12345678901234567890" not in await resp.text()


async def test_malformed_json_wrong_content_type_and_oversize(app_client):
    token = await dev_token(app_client, "a", "citizen")
    h = {**bearer(token), "Content-Type": "application/json"}
    r = await app_client.post(Q, data=b'{"channel": "video",', headers=h)
    assert r.status == 400 and (await r.json())["error"] == "bad_json"
    r = await app_client.post(Q, data=b"channel=video", headers={**bearer(token), "Content-Type": "text/plain"})
    assert r.status == 415 and (await r.json())["error"] == "unsupported_media_type"
    r = await app_client.post(Q, data=b'{"reason": "' + b"x" * 70_000 + b'"}', headers=h)
    assert r.status == 413 and (await r.json())["error"] == "body_too_large"
    assert await _queue_length(app_client) == 0


async def test_unknown_ids_routes_and_methods(app_client):
    token = await dev_token(app_client, "d", "clinician")
    for path in ("/api/v1/tickets/t_nope", "/api/v1/consultations/c_nope"):
        r = await app_client.get(path, headers=bearer(token))
        assert r.status == 404 and set(await r.json()) == {"error", "message"}
    r = await app_client.get("/api/v1/no-such-thing")
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    r = await app_client.put("/api/v1/services")
    assert r.status == 405 and (await r.json())["error"] == "method_not_allowed"
    r = await app_client.post("/api/v1/tenants/oslo/services/nope/queue/take", headers=bearer(token))
    assert r.status == 404 and (await r.json())["error"] == "service_not_found"


async def test_write_rate_limit(app_client, make_config):
    held = hold_rate_windows(app_client.server.app)  # all 65 in one minute's window, however slow the machine
    token = await dev_token(app_client, "d", "clinician")
    statuses = []
    for _ in range(65):
        r = await app_client.post(f"{Q}/take", headers=bearer(token))
        statuses.append(r.status)
    assert statuses == [204] * 60 + [429] * 5
    assert int(r.headers["Retry-After"]) > 0 and (await r.json())["error"] == "rate_limited"
    held.advance(60)  # the next window
    assert (await app_client.post(f"{Q}/take", headers=bearer(token))).status == 204


async def test_queue_list_limit(app_client):
    doc = await dev_token(app_client, "d", "clinician")
    for i in range(3):
        tok = await dev_token(app_client, f"c{i}", "citizen")
        await app_client.post(Q, json={"channel": "video", "reason": "r"}, headers=bearer(tok))
    assert len(await (await app_client.get(f"{Q}?limit=2", headers=bearer(doc))).json()) == 2
    assert len(await (await app_client.get(Q, headers=bearer(doc))).json()) == 3
    for bad in ("0", "501", "many"):
        r = await app_client.get(f"{Q}?limit={bad}", headers=bearer(doc))
        assert r.status == 422 and (await r.json())["error"] == "invalid_limit"


async def test_store_outage_is_a_503_not_a_500(make_config):
    from aiohttp.test_utils import TestClient, TestServer

    from signaling.app import build_app

    client = TestClient(TestServer(build_app(make_config(redis_url="redis://127.0.0.1:1/0")), host="127.0.0.1"))
    await client.start_server()
    try:
        tok = await dev_token(client, "a", "citizen")
        r = await client.post(Q, json={"channel": "video", "reason": "r"}, headers=bearer(tok))
        assert r.status == 503 and (await r.json())["error"] == "store_unavailable" and r.headers["Retry-After"]
    finally:
        await client.close()
