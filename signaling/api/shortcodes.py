"""Short codes (six digits) for callers who cannot get an SMS: the operator reads the code aloud, the
caller types it at the short address `/k` and lands on the invite. Single use, ten minutes, and the
redeeming side is rate-limited per address (a code cannot be found by trying)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from rooms.models import Principal
from rooms.shortcodes import CODE_TTL_S, ShortCodes, is_code

from ..appkeys import CONFIG, STORE
from ..http import Access, Api, ApiError, Body
from ..policy import public_base
from .consultations import load
from .limits import write_allowed

api = Api()
REDEEM_LIMIT = 10  # attempts per address and window: 10 of 10^6 codes
REDEEM_WINDOW_S = 600


class ShortCodeIn(Body):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class ShortCodeOut(BaseModel):
    code: str
    expires_in_s: int
    url: str


class RedeemIn(Body):
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class RedeemOut(BaseModel):
    token: str


@api.route("POST", "/api/v1/consultations/{consultation_id}/short-codes",
           summary="A six-digit code for one of this consultation's invites (hosts), to read aloud",
           body=ShortCodeIn, response=ShortCodeOut, status=201, errors=(401, 403, 404, 422, 429),
           tags=("consultations",), access=Access.HOST)
async def create_code(request: web.Request, principal: Principal, body: ShortCodeIn) -> ShortCodeOut:
    c = await load(request, principal, host=True)
    store = request.app[STORE]
    invite = await store.invites.peek(body.token)
    if invite.consultation_id != c.id or invite.tenant != principal.tenant:
        raise ApiError(422, "not_this_consultation", "Invitasjonen gjelder en annen konsultasjon.")
    await write_allowed(request, principal)
    code = await ShortCodes(store.redis).create(body.token, CODE_TTL_S)
    base = public_base(request.app[CONFIG])  # never the Host header
    return ShortCodeOut(code=code, expires_in_s=CODE_TTL_S, url=f"{base}/k")


@api.route("POST", "/api/v1/short-codes/redeem", summary="Exchange a six-digit code for its invite (once)",
           public=True, body=RedeemIn, response=RedeemOut, errors=(404, 422, 429), tags=("auth",))
async def redeem_code(request: web.Request, _p: None, body: RedeemIn) -> RedeemOut:
    code = body.code.replace(" ", "")
    if not is_code(code):
        raise ApiError(422, "invalid_code", "Koden er seks sifre.")
    store = request.app[STORE]
    await store.rate.hit("shortcode", request.remote or "unknown", "redeem", limit=REDEEM_LIMIT,
                         window_s=REDEEM_WINDOW_S)
    token = await ShortCodes(store.redis).redeem(code)
    if token is None:
        raise ApiError(404, "code_unknown", "Koden er ukjent, brukt eller utløpt. Be om en ny kode.")
    return RedeemOut(token=token)


async def short_address(_request: web.Request) -> web.StreamResponse:
    """`/k`: the address a caller types (short to read aloud) leads to the code form."""
    raise web.HTTPFound("/#/kode")
