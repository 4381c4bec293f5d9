"""Login: the authorization-code flow with PKCE against an OIDC provider the test runs itself (authorize,
token with the PKCE check, JWKS), and the app accepting the RS256 access token it issues."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import free_port, screen

pytestmark = pytest.mark.browser

CLIENT_ID = "nettlege-web"
AUDIENCE = "nettlege"


@dataclass
class Provider:
    """A tiny OIDC provider: /authorize redirects back with a code, /token checks the PKCE verifier and
    returns an RS256 JWT, /jwks publishes the key."""

    base: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)  # "ok" or why a code exchange was refused

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
        raise web.HTTPFound(f"{q['redirect_uri']}?code={code}&state={q['state']}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None:
            self.exchanges.append("unknown code")
            return web.json_response({"error": "invalid_grant"}, status=400)
        digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            self.exchanges.append("verifier does not match")
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"] or form.get("client_id") != CLIENT_ID:
            self.exchanges.append("redirect_uri or client_id differ")
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.exchanges.append("ok")
        now = int(time.time())
        token = jwt.encode({"iss": self.base, "sub": "idporten-12345", "aud": AUDIENCE, "iat": now,
                            "exp": now + 600, "name": "Ida Porten", "nettlege_role": "citizen",
                            "nettlege_tenant": "oslo"}, self.key, algorithm="RS256", headers={"kid": "k1"})
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 600})

    async def jwks(self, _request: web.Request) -> web.Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return web.json_response({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    p = Provider()
    port = free_port()
    p.base = f"http://127.0.0.1:{port}"
    server = TestServer(p.app(), host="127.0.0.1", port=port)
    await server.start_server()
    yield p
    await server.close()


async def test_oidc_login_with_pkce_and_the_app_accepts_the_token(start_app, provider, pages) -> None:
    base, _ = await start_app(dev_issuer=False, issuers=[{
        "issuer": provider.base, "jwks_url": f"{provider.base}/jwks", "audience": AUDIENCE,
        "algorithms": ["RS256"], "client_id": CLIENT_ID, "authorization_endpoint": f"{provider.base}/authorize",
        "token_endpoint": f"{provider.base}/token", "scope": "openid profile"}])
    page = await pages.open(base + "/")
    button = page.get_by_role("button", name="Logg inn med 127.0.0.1")
    await button.wait_for()
    assert await page.locator("#dev-name").count() == 0  # no dev login when it is off
    await screen(page, "login-oidc")
    await button.click()
    await page.locator("#whoami").get_by_text("Ida Porten").wait_for(timeout=10_000)
    assert provider.exchanges == ["ok"]
    assert "code=" not in page.url  # the code does not stay in the address bar
    # The access token works against the API: join a queue with it.
    await page.goto(base + "/#/join/oslo/legevakt")
    await page.fill("#reason", "Hoste")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()

    # A code exchange with the wrong verifier is refused by the issuer, and nettlege says so.
    code = secrets.token_urlsafe(16)
    provider.codes[code] = {"challenge": "x" * 43, "redirect_uri": base + "/"}
    async with ClientSession() as http, http.post(f"{base}/api/v1/auth/token", json={
            "issuer": provider.base, "code": code, "code_verifier": "v" * 43, "redirect_uri": base + "/"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "code_exchange_failed"
    assert provider.exchanges[-1] == "verifier does not match"
