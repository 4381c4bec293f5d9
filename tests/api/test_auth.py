"""The OIDC path against a real JWKS endpoint served by the test, the dev issuer, and refused tokens."""

import base64
import json
import secrets
import time

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from signaling.app import build_app
from signaling.appkeys import AUTH
from tests.conftest import bearer, dev_token

ISSUER = "https://helseid.test"
AUDIENCE = "nettlege-api"


@pytest.fixture
async def jwks_server():
    """An issuer's JWKS endpoint, as HelseID or ID-porten publish one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    hits = []

    async def jwks(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield key, str(server.make_url("/jwks")), hits
    await server.close()


@pytest.fixture
async def oidc_client(jwks_server, make_config):
    key, url, hits = jwks_server
    config = make_config(issuers=[{"issuer": ISSUER, "jwks_url": url, "audience": AUDIENCE, "role": "clinician",
                                   "tenant_claim": "kommune"}])
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    yield client, key, hits
    await client.close()


def _token(key, **over) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "hpr-9", "name": "Dr. Test", "kommune": "oslo",
              "iat": now, "exp": now + 300, **over}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


async def _status(client, token: str) -> tuple[int, str]:
    r = await client.get("/api/v1/tenants/oslo/services/nettlege/queue", headers=bearer(token))
    return r.status, (await r.json())["error"] if r.status >= 400 else ""


async def test_valid_oidc_token_maps_to_role_and_tenant(oidc_client):
    client, key, hits = oidc_client
    assert await _status(client, _token(key)) == (200, "")
    assert await _status(client, _token(key)) == (200, "")
    assert hits == ["/jwks"]  # the key set is cached
    # tenant comes from the claim: the same clinician in another tenant sees nothing of oslo
    assert (await _status(client, _token(key, kommune="bergen")))[0] == 404


@pytest.mark.parametrize("claims, code", [
    ({"exp": int(time.time()) - 10}, "token_expired"),
    ({"aud": "someone-else"}, "invalid_token"),
    ({"iss": "https://evil.test"}, "unknown_issuer"),
    ({"kommune": "atlantis"}, "unknown_tenant"),
    ({"kommune": ["oslo"]}, "unknown_tenant"),  # a claim of the wrong type is a 401, not a 500
    ({"kommune": {"id": "oslo"}}, "unknown_tenant"),
    ({"sub": 42}, "invalid_token"),
])
async def test_bad_oidc_tokens_are_refused(oidc_client, claims, code):
    client, key, _ = oidc_client
    assert await _status(client, _token(key, **claims)) == (401, code)


async def test_alg_none_and_wrong_key_are_refused(oidc_client):
    client, key, _ = oidc_client
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"k1"}').rstrip(b"=").decode()
    now = int(time.time())
    body = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "kommune": "oslo",
                                                "exp": now + 60}).encode()).rstrip(b"=").decode()
    assert (await _status(client, f"{header}.{body}."))[0] == 401
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await _status(client, _token(other)) == (401, "invalid_token")
    # an HS256 token signed with the public key (algorithm confusion) is refused
    assert (await _status(client, _token(key).split(".")[0] + ".e30.xx"))[0] == 401


async def test_missing_and_garbage_tokens(app_client):
    r = await app_client.get("/api/v1/me/access-log")
    assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert (await r.json())["error"] == "unauthorized"
    for header in ("Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer " + "a" * 5000):
        r = await app_client.get("/api/v1/me/access-log", headers={"Authorization": header})
        assert r.status == 401, header


async def test_dev_issuer_refused_in_production(make_config):
    config = make_config(env="production", chat_master_key=base64.b64encode(b"k" * 32).decode(),
                         audit_key="a" * 40, public_url="https://video.kommune.test",
                         secret_key=secrets.token_urlsafe(32))
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        r = await client.post("/api/v1/dev/token", json={"sub": "a", "role": "admin", "tenant": "oslo", "name": "A"})
        assert r.status == 403 and (await r.json())["error"] == "dev_issuer_disabled"
        # a dev token minted elsewhere with the same secret is refused too
        forged = jwt.encode({"iss": "nettlege-dev", "aud": "nettlege", "sub": "a", "role": "clinician",
                             "tenant": "oslo", "exp": int(time.time()) + 60}, config.secret_key, algorithm="HS256")
        assert (await client.get("/api/v1/me/access-log", headers=bearer(forged))).status == 401
    finally:
        await client.close()


async def test_dev_token_for_unknown_tenant_or_role(app_client):
    r = await app_client.post("/api/v1/dev/token", json={"sub": "a", "role": "citizen", "tenant": "nowhere",
                                                         "name": "A"})
    assert r.status == 404
    r = await app_client.post("/api/v1/dev/token", json={"sub": "a", "role": "king", "tenant": "oslo", "name": "A"})
    assert r.status == 422
    assert await dev_token(app_client, "a", "admin")


async def test_a_remembered_token_still_expires_and_a_changed_one_is_verified_again(oidc_client):
    """Verified tokens are answered from memory (signaling/auth.py VERIFIED_TTL_S), but never past their `exp`, and
    only the exact token that verified: a token differing in one signature byte, or one past its memory's time, goes
    through PyJWT again."""
    client, key, hits = oidc_client
    token = _token(key)
    assert await _status(client, token) == (200, "")
    assert await _status(client, token) == (200, "")  # from memory
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    assert await _status(client, tampered) == (401, "invalid_token")
    other_body = base64.urlsafe_b64encode(json.dumps({**jwt.decode(token, options={"verify_signature": False}),
                                                      "kommune": "bergen"}).encode()).rstrip(b"=").decode()
    assert await _status(client, f"{head}.{other_body}.{sig}") == (401, "invalid_token")  # same signature, new claims
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    client.server.app[AUTH]._clock = lambda: exp + 1.0  # the remembered token's clock passes its exp
    assert await _status(client, token) == (401, "token_expired")
    assert hits == ["/jwks"]


async def test_a_remembered_token_is_verified_again_after_its_memory_time(oidc_client):
    """Past VERIFIED_TTL_S the token is verified again with the issuer's keys as they are then."""
    import signaling.auth as auth_module

    client, key, _ = oidc_client
    token = _token(key, exp=int(time.time()) + 3600)
    app = client.server.app
    principal = await app[AUTH].verify(token)
    assert await app[AUTH].verify(token) is principal  # from memory
    later = time.time() + auth_module.VERIFIED_TTL_S + 1
    app[AUTH]._clock = lambda: later
    again = await app[AUTH].verify(token)
    assert again == principal and again is not principal  # decoded anew
