"""Queues and tickets: join, see my place, leave, triage (priority) and take next.

Every staff read of a ticket's personal data (reason, name, phone: the queue list, one ticket, a triage
answer) is audited as `ticket.read` under the ticket's owner, so it shows in their access log.
"""

from __future__ import annotations

from aiohttp import web

from rooms.errors import NotFound
from rooms.models import Channel, Principal, Priority, Role, Ticket
from rooms.store import Store
from rooms.tenants import Service

from ..appkeys import CONFIG, STORE
from ..http import Access, Api, ApiError, require_tenant
from .consultations import view
from .schemas import JoinQueueIn, PriorityIn, TakeOut, TicketOut, ticket_out
from .sms import notify_turn

api = Api()
QUEUERS = (Role.CITIZEN, Role.NURSE)
TRIAGE = (Role.CLINICIAN, Role.NURSE)
STAFF = (Role.CLINICIAN, Role.NURSE, Role.OPERATOR)


def _service(request: web.Request, principal: Principal) -> Service:
    tenant_id, service_id = request.match_info["tenant"], request.match_info["service"]
    require_tenant(principal, tenant_id)
    tenant = request.app[CONFIG].tenant(tenant_id)
    service = tenant.service(service_id) if tenant else None
    if service is None:
        raise ApiError(404, "service_not_found", "Fant ikke denne tjenesten.")
    return service


async def _ticket_view(store: Store, request: web.Request, ticket: Ticket, principal: Principal) -> TicketOut:
    tenant = request.app[CONFIG].tenant(ticket.tenant)
    service = tenant.service(ticket.service) if tenant else None
    place = await store.queue.place(ticket, service.median_consultation_s if service else 600)
    return ticket_out(ticket, place.position if place else None, place.eta_s if place else None,
                      staff_view=principal.role in STAFF)


async def _my_ticket(request: web.Request, principal: Principal, *, staff: tuple[Role, ...]) -> Ticket:
    """The ticket in the caller's tenant; its owner or staff of the tenant may see it."""
    ticket = await request.app[STORE].queue.get(principal.tenant, request.match_info["ticket_id"])
    if ticket.owner != principal.subject and principal.role not in staff:
        raise NotFound("Fant ikke denne plassen i køen.", code="ticket_not_found")
    return ticket


@api.route("POST", "/api/v1/tenants/{tenant}/services/{service}/queue", summary="Join a service's queue",
           roles=QUEUERS, body=JoinQueueIn, response=TicketOut, status=201, errors=(401, 403, 404, 409, 422, 429),
           tags=("queue",), access=Access.TENANT)
async def join_queue(request: web.Request, principal: Principal, body: JoinQueueIn) -> TicketOut:
    service = _service(request, principal)
    tenant = request.app[CONFIG].tenant(principal.tenant)
    assert tenant is not None
    if body.channel not in service.channels:
        raise ApiError(422, "channel_not_offered", f"{service.name} tilbyr ikke {body.channel.value}.")
    if body.channel == Channel.PHONE and not body.callback_phone:
        raise ApiError(422, "callback_phone_required", "Oppgi telefonnummeret vi skal ringe deg på.")
    if body.priority is not None and principal.role != Role.NURSE:
        raise ApiError(403, "forbidden", "Bare helsepersonell kan sette hastegrad.")
    queued = await request.app[STORE].rooms.join_queue(
        principal, tenant, service, channel=body.channel, reason=body.reason,
        callback_phone=body.callback_phone,  # phone: the number to call; video/chat: an optional "your turn" SMS
        priority=body.priority or Priority.GREEN,
        writes_per_minute=request.app[CONFIG].limits.writes_per_minute)  # counted by the join's script
    return ticket_out(queued.ticket, queued.place.position, queued.place.eta_s,
                      staff_view=principal.role in STAFF)


MAX_LIST = 500


@api.route("GET", "/api/v1/tenants/{tenant}/services/{service}/queue", summary="The waiting queue (staff)",
           roles=STAFF, response=list[TicketOut], errors=(401, 403, 404, 422), tags=("queue",), access=Access.TENANT,
           query={"limit": f"the first N tickets in serving order (default 100, at most {MAX_LIST})"})
async def list_queue(request: web.Request, principal: Principal, _b: None) -> list[dict[str, object]]:
    service = _service(request, principal)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST:
        raise ApiError(422, "invalid_limit", f"limit må være et tall fra 1 til {MAX_LIST}.")
    store = request.app[STORE]
    tickets = await store.queue.waiting(principal.tenant, service.id, limit)
    await store.rooms.tickets_read(principal, tickets)
    return [ticket_out(t, i + 1, None, staff_view=True).model_dump(mode="json") for i, t in enumerate(tickets)]


@api.route("POST", "/api/v1/tenants/{tenant}/services/{service}/queue/take",
           summary="Take the next ticket: opens a consultation with its owner (204 when empty)",
           roles=(Role.CLINICIAN,), response=TakeOut, errors=(401, 403, 404, 429), tags=("queue",),
           access=Access.TENANT)
async def take_next(request: web.Request, principal: Principal, _b: None) -> TakeOut | web.Response:
    service = _service(request, principal)
    taken = await request.app[STORE].rooms.take_next(  # the limit is counted by the take's script
        principal, service.id, takes_per_minute=request.app[CONFIG].limits.writes_per_minute)
    if taken is None:
        return web.Response(status=204)
    ticket, consultation = taken
    if ticket.callback_phone and ticket.channel != Channel.PHONE:  # phone: the clinician calls instead
        notify_turn(request.app, ticket.callback_phone, service.name, consultation.id)
    return TakeOut(ticket_id=ticket.id, consultation_id=consultation.id,
                   ticket=ticket_out(ticket, None, None, staff_view=True),
                   consultation=await view(request, consultation, principal.subject))


@api.route("GET", "/api/v1/tickets/{ticket_id}", summary="A ticket with its place and estimated wait",
           response=TicketOut, errors=(401, 404), tags=("queue",), access=Access.TICKET)
async def get_ticket(request: web.Request, principal: Principal, _b: None) -> TicketOut:
    ticket = await _my_ticket(request, principal, staff=STAFF)
    await request.app[STORE].rooms.tickets_read(principal, [ticket])
    return await _ticket_view(request.app[STORE], request, ticket, principal)


@api.route("DELETE", "/api/v1/tickets/{ticket_id}", summary="Leave the queue", status=204,
           errors=(401, 404, 409), tags=("queue",), access=Access.TICKET)
async def leave_queue(request: web.Request, principal: Principal, _b: None) -> None:
    ticket = await _my_ticket(request, principal, staff=TRIAGE)
    await request.app[STORE].rooms.leave_queue(principal, ticket)


@api.route("PATCH", "/api/v1/tickets/{ticket_id}", summary="Set a ticket's priority (triage)", roles=TRIAGE,
           body=PriorityIn, response=TicketOut, errors=(401, 403, 404, 409, 422), tags=("queue",),
           access=Access.TICKET)
async def set_priority(request: web.Request, principal: Principal, body: PriorityIn) -> TicketOut:
    ticket = await _my_ticket(request, principal, staff=TRIAGE)
    store = request.app[STORE]
    ticket = await store.rooms.set_priority(principal, ticket, body.priority)
    await store.rooms.tickets_read(principal, [ticket])
    return await _ticket_view(store, request, ticket, principal)


@api.route("GET", "/api/v1/me/ticket", summary="My waiting ticket in my tenant (a second device finds its place)",
           roles=QUEUERS, response=TicketOut, errors=(401, 403, 404), tags=("queue",))
async def my_ticket(request: web.Request, principal: Principal, _b: None) -> TicketOut:
    config, store = request.app[CONFIG], request.app[STORE]
    tenant = config.tenant(principal.tenant)
    for service in tenant.services if tenant else ():
        ticket_id = await store.queue.open_ticket_of(principal.tenant, principal.subject, service.id)
        if ticket_id is None:
            continue
        try:
            ticket = await store.queue.get(principal.tenant, ticket_id)
        except NotFound:
            continue
        return await _ticket_view(store, request, ticket, principal)
    raise NotFound("Du står ikke i noen kø.", code="no_ticket")
