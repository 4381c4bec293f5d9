"""Consultations: create, read, end; invites; the lobby (knock, admit, deny).

Who may call what is declared on each route (`access=`) and enforced by the route wrapper before the
handler runs (signaling/http.py, signaling/policy.py); docs/security.md shows the resulting table.
"""

from __future__ import annotations

from aiohttp import web

from rooms.audit import Action, Audit
from rooms.models import Consultation, ConsultationState, Principal, Role

from .. import policy
from ..appkeys import CONFIG, STORE
from ..config import Config
from ..http import Access, Api, ApiError, consultation_of, load_consultation, require_tenant
from ..placement import NODE
from .limits import write_allowed
from .schemas import (
    ConsultationOut,
    CreateConsultationIn,
    EndIn,
    InviteIn,
    InviteOut,
    KnockOut,
    ParticipantOut,
    consultation_out,
)

api = Api()
CREATORS = (Role.CLINICIAN, Role.NURSE, Role.OPERATOR, Role.BOOKING)


async def view(request: web.Request, c: Consultation, subject: str) -> ConsultationOut:
    """The consultation as its caller sees it, with the signaling URL of the node holding its media."""
    out = consultation_out(c, subject)
    out.signal_url = await request.app[NODE].signal_url(c.tenant, c.id)
    return out


async def load(request: web.Request, principal: Principal, *, host: bool = False) -> Consultation:
    """The consultation of the path for an admitted participant (a host when `host`); see load_consultation."""
    return await load_consultation(request, principal, host=host)


@api.route("POST", "/api/v1/consultations", summary="Create a consultation (the creator is admitted)",
           roles=CREATORS, body=CreateConsultationIn, response=ConsultationOut, status=201,
           errors=(401, 403, 404, 422, 429), tags=("consultations",), access=Access.TENANT)
async def create(request: web.Request, principal: Principal, body: CreateConsultationIn) -> ConsultationOut:
    require_tenant(principal, body.tenant)
    tenant = request.app[CONFIG].tenant(body.tenant)
    if tenant is None or tenant.service(body.service) is None:
        raise ApiError(404, "service_not_found", "Fant ikke denne tjenesten.")
    if body.citizen and principal.role != Role.BOOKING:
        raise ApiError(403, "forbidden", "Bare et bookingsystem kan forhåndsgodkjenne en innbygger.")
    await write_allowed(request, principal)
    c = await request.app[STORE].rooms.create_consultation(principal, body.tenant, body.service,
                                                           scheduled_at=body.scheduled_at, channel=body.channel,
                                                           citizen=body.citizen)
    return await view(request, c, principal.subject)


@api.route("GET", "/api/v1/consultations/{consultation_id}", summary="A consultation I take part in",
           response=ConsultationOut, errors=(401, 403, 404), tags=("consultations",), scoped=True,
           access=Access.PARTICIPANT)
async def get(request: web.Request, principal: Principal, _b: None) -> ConsultationOut:
    c = consultation_of(request)
    await request.app[STORE].audit.record_access(principal.tenant, Action.CONSULTATION_VIEWED, actor=principal.subject,
                                          role=principal.role, consultation_id=c.id)
    return await view(request, c, principal.subject)


@api.route("POST", "/api/v1/consultations/{consultation_id}/end", summary="End with an outcome",
           body=EndIn, response=ConsultationOut, errors=(401, 403, 404, 409, 422), tags=("consultations",),
           scoped=True, access=Access.HOST)
async def end(request: web.Request, principal: Principal, body: EndIn) -> ConsultationOut:
    c = await request.app[STORE].rooms.end(principal, consultation_of(request).id, body.outcome)
    return await view(request, c, principal.subject)


@api.route("POST", "/api/v1/consultations/{consultation_id}/invites", summary="Create a single-use invite",
           body=InviteIn, response=InviteOut, status=201, errors=(401, 403, 404, 409, 422, 429),
           tags=("consultations",), scoped=True, access=Access.HOST)
async def invite(request: web.Request, principal: Principal, body: InviteIn) -> InviteOut:
    c = consultation_of(request)
    config, store = request.app[CONFIG], request.app[STORE]
    if c.state == ConsultationState.ENDED:
        raise ApiError(409, "consultation_ended", "Konsultasjonen er avsluttet.")
    if not policy.may_invite(principal.role, body.role):
        raise ApiError(422, "role_not_invitable", f"Du kan ikke invitere rollen {body.role.value}.")
    if body.ttl_s > config.limits.max_invite_ttl_s:
        raise ApiError(422, "ttl_too_long", f"En lenke kan vare høyst {config.limits.max_invite_ttl_s} sekunder.")
    await write_allowed(request, principal)
    inv = await store.invites.create(principal.tenant, c.id, role=body.role, ttl_s=body.ttl_s, lobby=body.lobby,
                                     created_by=principal.subject, history=body.history,
                                     audit=Audit(principal.subject, principal.role))  # in the same transaction
    return InviteOut(token=inv.token, url=invite_url(config, inv.token), role=inv.role,
                     expires_at=inv.expires_at, history=inv.history)


def invite_url(config: Config, token: str) -> str:
    """An invite link: always under `public_url` (or the configured own address), never the Host header."""
    return f"{policy.public_base(config)}/#/invite/{token}"


@api.route("POST", "/api/v1/consultations/{consultation_id}/knock",
           summary="Ask to be let in: the caller waits in the lobby until a clinician admits or denies",
           response=KnockOut, status=202, errors=(401, 403, 404, 409, 429), tags=("lobby",), access=Access.KNOCK)
async def knock(request: web.Request, principal: Principal, _b: None) -> KnockOut:
    await write_allowed(request, principal)
    p = await request.app[STORE].rooms.knock(principal, request.match_info["consultation_id"])
    return KnockOut(participant_id=p.id, state=p.state.value)


async def _decide(request: web.Request, principal: Principal, admit: bool) -> ParticipantOut:
    p = await request.app[STORE].rooms.decide(principal, consultation_of(request).id,
                                              request.match_info["participant_id"], admit)
    return ParticipantOut(id=p.id, role=p.role, display_name=p.display_name, state=p.state.value)


@api.route("POST", "/api/v1/consultations/{consultation_id}/participants/{participant_id}/admit",
           summary="Admit someone waiting in the lobby", response=ParticipantOut,
           errors=(401, 403, 404, 409), tags=("lobby",), scoped=True, access=Access.HOST)
async def admit(request: web.Request, principal: Principal, _b: None) -> ParticipantOut:
    return await _decide(request, principal, True)


@api.route("POST", "/api/v1/consultations/{consultation_id}/participants/{participant_id}/deny",
           summary="Deny someone waiting in the lobby", response=ParticipantOut,
           errors=(401, 403, 404, 409), tags=("lobby",), scoped=True, access=Access.HOST)
async def deny(request: web.Request, principal: Principal, _b: None) -> ParticipantOut:
    return await _decide(request, principal, False)
