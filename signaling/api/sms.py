"""Send an invite link to a phone by SMS through the configured webhook (web client: operator, invite).

The server composes the whole text from the tenant's `sms_template` and a link under `public_url`: the
client names the invite (its token, or the invite URL it was given) and the number, nothing else, so
the SMS gateway cannot carry anyone's text or links to other sites.
Without `sms_webhook_url` (the embedded default) nothing is sent: the client shows the link on screen,
and the server logs that a link was handed out, without the number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated

import aiohttp
from aiohttp import web
from pydantic import BaseModel, StringConstraints, model_validator

from rooms.errors import DomainError
from rooms.invites import parse_token
from rooms.models import Principal

from ..appkeys import CONFIG, HTTP, STORE
from ..http import Access, Api, ApiError, Body, consultation_of
from .consultations import invite_url
from .limits import write_allowed
from .schemas import PHONE

log = logging.getLogger(__name__)
api = Api()


class SmsIn(Body):
    phone: Annotated[str, StringConstraints(pattern=PHONE)]
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None  # the invite token
    url: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None  # or its invite URL

    @model_validator(mode="after")
    def _one_invite(self) -> SmsIn:
        if (self.token is None) == (self.url is None):
            raise ValueError("give token or url")
        return self


class SmsOut(BaseModel):
    sent: bool


NOT_AN_INVITE = ("not_an_invite", "Bare gyldige invitasjoner til denne konsultasjonen kan sendes på SMS.")


@api.route("POST", "/api/v1/consultations/{consultation_id}/sms", summary="Send an invite link by SMS",
           body=SmsIn, response=SmsOut, errors=(401, 403, 404, 422, 429, 502), tags=("consultations",),
           access=Access.HOST)
async def send_sms(request: web.Request, principal: Principal, body: SmsIn) -> SmsOut:
    c = consultation_of(request)
    config = request.app[CONFIG]
    token = body.token if body.token is not None else (body.url or "").rpartition("/#/invite/")[2]
    if parse_token(token) is None:
        raise ApiError(422, *NOT_AN_INVITE)
    try:
        invite = await request.app[STORE].invites.peek(token)
    except DomainError:
        raise ApiError(422, *NOT_AN_INVITE) from None
    if invite.tenant != c.tenant or invite.consultation_id != c.id or invite.expires_at < time.time():
        raise ApiError(422, *NOT_AN_INVITE)
    await write_allowed(request, principal)
    tenant = config.tenant(c.tenant)
    assert tenant is not None
    text = tenant.sms_template.format(tenant=tenant.name, link=invite_url(config, token))
    if not config.sms_webhook_url:
        log.info("invite link for consultation %s handed out on screen (no SMS webhook)", c.id)
        return SmsOut(sent=False)
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


# Strong references to "it is your turn" messages in flight (asyncio keeps only weak ones to tasks).
_TURN_SMS: set[asyncio.Task[bool]] = set()


async def send_text(app: web.Application, phone: str, text: str) -> bool:
    """One SMS through the configured webhook; False when none is configured or it failed (never raises)."""
    url = app[CONFIG].sms_webhook_url
    if not url:
        return False
    try:
        async with app[HTTP].post(url, json={"to": phone, "text": text},
                                  timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return resp.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False


def notify_turn(app: web.Application, phone: str, service_name: str, consultation_id: str) -> None:
    """'It is your turn' to a citizen who gave a number when queueing, without delaying take-next."""
    if not app[CONFIG].sms_webhook_url:
        return
    text = f"nettlege: Det er din tur hos {service_name}. Gå tilbake til nettlege-siden nå."

    async def send() -> bool:
        ok = await send_text(app, phone, text)
        log.info("turn SMS for consultation %s: %s", consultation_id, "sent" if ok else "failed")
        return ok

    task = asyncio.get_running_loop().create_task(send())
    _TURN_SMS.add(task)
    task.add_done_callback(_TURN_SMS.discard)
