"""Send an invite link to a phone by SMS through the configured webhook (web client: operator, invite).

Without `sms_webhook_url` (the embedded default) nothing is sent: the client shows the link on screen,
and the server logs that a link was handed out, without the number.
"""

from __future__ import annotations

import logging
from typing import Annotated

import aiohttp
from aiohttp import web
from pydantic import BaseModel, StringConstraints

from rooms.models import Principal

from ..appkeys import CONFIG, HTTP
from ..http import Api, ApiError, Body
from .consultations import load
from .limits import write_allowed
from .schemas import PHONE

log = logging.getLogger(__name__)
api = Api()


class SmsIn(Body):
    phone: Annotated[str, StringConstraints(pattern=PHONE)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SmsOut(BaseModel):
    sent: bool


@api.route("POST", "/api/v1/consultations/{consultation_id}/sms", summary="Send an invite link by SMS",
           body=SmsIn, response=SmsOut, errors=(401, 403, 404, 422, 429, 502), tags=("consultations",))
async def send_sms(request: web.Request, principal: Principal, body: SmsIn) -> SmsOut:
    c = await load(request, principal, host=True)
    config = request.app[CONFIG]
    base = (config.public_url or f"{request.scheme}://{request.host}").rstrip("/")
    # Only our own invite links: the SMS gateway must not carry anyone's text or links to other sites.
    if not body.url.startswith(f"{base}/#/invite/"):
        raise ApiError(422, "not_an_invite", "Bare invitasjonslenker fra denne tjenesten kan sendes på SMS.")
    await write_allowed(request, principal)
    if not config.sms_webhook_url:
        log.info("invite link for consultation %s handed out on screen (no SMS webhook)", c.id)
        return SmsOut(sent=False)
    text = f"Lenke til videokonsultasjon: {body.url}"
    try:
        async with request.app[HTTP].post(config.sms_webhook_url, json={"to": body.phone, "text": text},
                                          timeout=aiohttp.ClientTimeout(total=10)) as resp:
            ok = resp.status < 300
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    log.info("invite link for consultation %s sent by SMS: %s", c.id, "ok" if ok else "failed")
    if not ok:
        raise ApiError(502, "sms_failed", "SMS-en kunne ikke sendes. Les lenken opp for innringeren.")
    return SmsOut(sent=True)
