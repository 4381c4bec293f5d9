"""Continue a waiting ticket on another channel ("Ring meg heller": video or chat becomes a phone call).

The ticket keeps its place in the queue; only its owner may switch it (anyone else: 404, as if it did not
exist). The change is audited as `ticket.channel` in the store script, and the queue event makes the staff
dashboard and the owner's other pages look again.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import StringConstraints

from rooms.errors import NotFound
from rooms.models import Channel, Principal, Role

from ..appkeys import CONFIG, STORE
from ..http import Access, Api, ApiError, Body
from .limits import write_allowed
from .queue import _ticket_view
from .schemas import PHONE, TicketOut

api = Api()


class ChannelIn(Body):
    channel: Channel
    # phone: the number to call; left out, the one given when queueing is used (it is confirmed on screen)
    callback_phone: Annotated[str, StringConstraints(pattern=PHONE)] | None = None


@api.route("PUT", "/api/v1/tickets/{ticket_id}/channel",
           summary="Continue a waiting ticket on another channel (keeps its place; phone needs a number)",
           roles=(Role.CITIZEN, Role.NURSE), body=ChannelIn, response=TicketOut,
           errors=(401, 403, 404, 409, 422, 429), tags=("queue",), access=Access.TICKET_OWNER)
async def set_channel(request: web.Request, principal: Principal, body: ChannelIn) -> TicketOut:
    store = request.app[STORE]
    ticket = await store.queue.get(principal.tenant, request.match_info["ticket_id"])
    if ticket.owner != principal.subject:
        raise NotFound("Fant ikke denne plassen i køen.", code="ticket_not_found")
    tenant = request.app[CONFIG].tenant(ticket.tenant)
    service = tenant.service(ticket.service) if tenant else None
    if service is None or body.channel not in service.channels:
        name = service.name if service else ticket.service
        raise ApiError(422, "channel_not_offered", f"{name} tilbyr ikke {body.channel.value}.")
    if body.channel == Channel.PHONE and not (body.callback_phone or ticket.callback_phone):
        raise ApiError(422, "callback_phone_required", "Oppgi telefonnummeret vi skal ringe deg på.")
    await write_allowed(request, principal)
    ticket = await store.rooms.switch_channel(principal, ticket, body.channel, body.callback_phone)  # audited
    return await _ticket_view(store, request, ticket, principal)
