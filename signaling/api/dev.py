"""The dev token issuer: on in the embedded default and tests, refused in production."""

from aiohttp import web

from ..appkeys import AUTH, CONFIG
from ..http import Api, ApiError
from .schemas import DevTokenIn, TokenOut

api = Api()


@api.route("POST", "/api/v1/dev/token", summary="Issue a development token (not in production)", public=True,
           body=DevTokenIn, response=TokenOut, errors=(403, 404, 422), tags=("auth",))
async def dev_token(request: web.Request, _principal: None, body: DevTokenIn) -> TokenOut:
    config = request.app[CONFIG]
    if not config.dev_issuer_enabled:
        raise ApiError(403, "dev_issuer_disabled", "Utviklerinnlogging er slått av på denne serveren.")
    if config.tenant(body.tenant) is None:
        raise ApiError(404, "tenant_not_found", f"Ukjent kommune: {body.tenant}.")
    return TokenOut(token=request.app[AUTH].issue_dev_token(body.sub, body.role, body.tenant, body.name))
