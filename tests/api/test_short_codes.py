"""Six-digit codes for callers without SMS: a host makes one for an invite of its consultation; the code is
spent once, lives ten minutes, other consultations' invites are refused, and guessing is rate-limited."""

from rooms.shortcodes import CODE_TTL_S
from signaling.api.shortcodes import REDEEM_LIMIT
from signaling.appkeys import STORE
from tests.conftest import bearer, dev_token, hold_rate_windows


async def _consultation_with_invite(client, who: str = "op"):
    op = await dev_token(client, who, "operator")
    c = await (await client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "legevakt"},
                                 headers=bearer(op))).json()
    inv = await (await client.post(f"/api/v1/consultations/{c['id']}/invites",
                                   json={"role": "citizen", "ttl_s": 3600, "lobby": False}, headers=bearer(op))).json()
    return op, c, inv


async def test_a_code_is_six_digits_spent_once_and_expires(app_client):
    op, c, inv = await _consultation_with_invite(app_client)
    resp = await app_client.post(f"/api/v1/consultations/{c['id']}/short-codes", json={"token": inv["token"]},
                                 headers=bearer(op))
    assert resp.status == 201
    made = await resp.json()
    assert len(made["code"]) == 6 and made["code"].isdigit() and made["url"].endswith("/k")
    assert made["expires_in_s"] == CODE_TTL_S
    ttl = await app_client.server.app[STORE].redis.ttl(f"nettlege:shortcode:{made['code']}")
    assert 0 < ttl <= CODE_TTL_S
    spaced = f"{made['code'][:3]} {made['code'][3:]}"  # read aloud in two groups, typed with a space
    first = await app_client.post("/api/v1/short-codes/redeem", json={"code": spaced})
    assert first.status == 200 and (await first.json())["token"] == inv["token"]
    again = await app_client.post("/api/v1/short-codes/redeem", json={"code": made["code"]})
    assert again.status == 404 and (await again.json())["error"] == "code_unknown"
    # /k, the short address, leads to the code form.
    k = await app_client.get("/k", allow_redirects=False)
    assert k.status == 302 and k.headers["Location"] == "/#/kode"


async def test_only_a_host_of_that_consultation_and_only_its_invites(app_client):
    op, c, inv = await _consultation_with_invite(app_client)
    _, _other, other_inv = await _consultation_with_invite(app_client, "op2")
    wrong = await app_client.post(f"/api/v1/consultations/{c['id']}/short-codes", json={"token": other_inv["token"]},
                                  headers=bearer(op))
    assert wrong.status == 422 and (await wrong.json())["error"] == "not_this_consultation"
    citizen = await dev_token(app_client, "kari", "citizen")
    refused = await app_client.post(f"/api/v1/consultations/{c['id']}/short-codes", json={"token": inv["token"]},
                                    headers=bearer(citizen))
    assert refused.status in (403, 404)
    bad = await app_client.post(f"/api/v1/consultations/{c['id']}/short-codes", json={"token": 5}, headers=bearer(op))
    assert bad.status == 422


async def test_redeeming_is_rate_limited_and_checks_the_shape(app_client):
    hold_rate_windows(app_client.server.app)  # every attempt in one window: a turning window resets the count
    for bad in ("12345", "abcdef", "1234567"):
        resp = await app_client.post("/api/v1/short-codes/redeem", json={"code": bad})
        assert resp.status == 422 and (await resp.json())["error"] == "invalid_code"
    statuses = []
    for i in range(REDEEM_LIMIT + 1):
        resp = await app_client.post("/api/v1/short-codes/redeem", json={"code": f"{i:06d}"})
        statuses.append(resp.status)
    assert statuses[:REDEEM_LIMIT] == [404] * REDEEM_LIMIT
    assert statuses[-1] == 429
    assert "Retry-After" in resp.headers
