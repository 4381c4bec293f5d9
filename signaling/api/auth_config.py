"""What a browser needs before it is logged in: how to log in, the code exchange, what an invite is for.

- `GET /api/v1/auth/config`: whether the dev login is on and which OIDC issuers to offer (those
  configured with `client_id` and `authorization_endpoint`).
- `POST /api/v1/auth/token`: the authorization-code exchange, forwarded to the issuer's token endpoint.
  The PKCE verifier is made in the browser and checked by the issuer; nettlege only relays it (the
  page's CSP lets the browser talk to its own origin only). The client secret is never involved:
  browser clients are public clients.
- `GET /api/v1/invites/{token}`: which consultation and role an invite link is for, without spending
  it, so the invitee's page can open that consultation's signaling socket.
- `POST /api/v1/invites/{token}/accept`: a clinician or nurse, logged in with their own identity, spends
  an invite for their role; they then join with their own token (staff invites are never spent
  anonymously, see signaling/policy.py).
"""

from __future__ import annotations

import logging
from typing import Annotated

import aiohttp
from aiohttp import web
from pydantic import BaseModel, StringConstraints

from rooms.invites import parse_token
from rooms.models import Principal

from .. import policy
from ..appkeys import AUTH, CONFIG, HTTP, STORE
from ..http import Access, Api, ApiError, Body
from ..identity import accept_invite
from .limits import write_allowed

log = logging.getLogger(__name__)
api = Api()


class LoginIssuerOut(BaseModel):
    issuer: str
    name: str  # shown on the login button, e.g. "HelseID" or "ID-porten"
    client_id: str
    authorization_endpoint: str
    scope: str


class AuthConfigOut(BaseModel):
    dev_login: bool
    issuers: list[LoginIssuerOut]
    sms: bool  # an SMS webhook is configured (else links are shown on screen)


class CodeExchangeIn(Body):
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    code: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    code_verifier: Annotated[str, StringConstraints(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")]
    redirect_uri: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokensOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    id_token: str | None = None


class AcceptedOut(BaseModel):
    consultation_id: str
    participant_id: str
    state: str


class InvitePreviewOut(BaseModel):
    consultation_id: str
    role: str
    lobby: bool
    expires_at: float


@api.route("GET", "/api/v1/auth/config", summary="How to log in: dev login and OIDC issuers", public=True,
           response=AuthConfigOut, tags=("auth",))
async def auth_config(request: web.Request, _p: None, _b: None) -> AuthConfigOut:
    config = request.app[CONFIG]
    issuers = [LoginIssuerOut(issuer=i.issuer, name=i.name or i.issuer, client_id=i.client_id,
                              authorization_endpoint=i.authorization_endpoint,
                              scope=i.scope)
               for i in config.issuers if i.client_id and i.authorization_endpoint and i.token_endpoint]
    return AuthConfigOut(dev_login=config.dev_issuer_enabled, issuers=issuers, sms=bool(config.sms_webhook_url))


@api.route("POST", "/api/v1/auth/token", summary="Exchange an authorization code (PKCE) at the issuer",
           public=True, body=CodeExchangeIn, response=TokensOut, errors=(400, 404, 422, 502), tags=("auth",))
async def exchange_code(request: web.Request, _p: None, body: CodeExchangeIn) -> TokensOut:
    config = request.app[CONFIG]
    issuer = next((i for i in config.issuers if i.issuer == body.issuer and i.token_endpoint and i.client_id), None)
    if issuer is None:
        raise ApiError(404, "issuer_not_found", "Ukjent innloggingstjeneste.")
    assert issuer.token_endpoint and issuer.client_id
    form = {"grant_type": "authorization_code", "code": body.code, "code_verifier": body.code_verifier,
            "redirect_uri": body.redirect_uri, "client_id": issuer.client_id}
    try:
        async with request.app[HTTP].post(issuer.token_endpoint, data=form,
                                          timeout=aiohttp.ClientTimeout(total=10)) as resp:
            data = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("token endpoint of %s failed: %s", issuer.issuer, type(exc).__name__)
        raise ApiError(502, "issuer_unavailable", "Innloggingstjenesten svarer ikke. Prøv igjen.") from None
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise ApiError(400, "code_exchange_failed", "Innloggingen kunne ikke fullføres. Prøv å logge inn på nytt.")
    # The token is checked like any bearer token before it is handed back.
    await request.app[AUTH].verify(data["access_token"])
    return TokensOut(access_token=data["access_token"], token_type=str(data.get("token_type") or "Bearer"),
                     expires_in=data.get("expires_in") if isinstance(data.get("expires_in"), int) else None,
                     id_token=data.get("id_token") if isinstance(data.get("id_token"), str) else None)


@api.route("GET", "/api/v1/invites/{token}", summary="What an invite link is for (does not spend it)",
           public=True, response=InvitePreviewOut, errors=(404, 410), tags=("auth",))
async def invite_preview(request: web.Request, _p: None, _b: None) -> InvitePreviewOut:
    token = request.match_info["token"]
    if parse_token(token) is None:
        raise ApiError(404, "invite_unknown", "Lenken er ugyldig.")
    invite = await request.app[STORE].invites.peek(token)
    # A spent link says so on its first screen, before the name form and the camera (a staff invite is
    # bound to the person who accepted it, who may open it again: the accept answers them).
    if invite.used and invite.role not in policy.STAFF_INVITEES:
        raise ApiError(410, "invite_used", "Lenken er allerede brukt. Be om en ny lenke.")
    return InvitePreviewOut(consultation_id=invite.consultation_id, role=invite.role.value, lobby=invite.lobby,
                            expires_at=invite.expires_at)


@api.route("POST", "/api/v1/invites/{token}/accept",
           summary="A logged-in clinician or nurse accepts an invite for their role (joins with their own identity)",
           roles=policy.STAFF_INVITEES, response=AcceptedOut, errors=(401, 403, 404, 409, 410, 429), tags=("auth",),
           access=Access.TENANT)
async def accept(request: web.Request, principal: Principal, _b: None) -> AcceptedOut:
    token = request.match_info["token"]
    if parse_token(token) is None:
        raise ApiError(404, "invite_unknown", "Lenken er ugyldig.")
    await write_allowed(request, principal)
    cid, participant = await accept_invite(request.app, principal, token)
    return AcceptedOut(consultation_id=cid, participant_id=participant.id, state=participant.state.value)
