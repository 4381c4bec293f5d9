"""Bookings: a booking system (role `booking`, client credentials) books, moves and cancels slots and polls
for their state; join links for the citizen and the host clinician; the host's list of today's bookings;
the sweep that ends unattended slots as no-show.

A join link is `<base>/#/booking/<signed token>`: a JWT signed with the server's key naming the
consultation, the person it is for and their role. It opens the waiting room from 15 minutes before the
slot (checked against the booking's current slot, so a rescheduled slot moves the window). The citizen's
link works on its own (it is exchanged for a session token bound to that consultation, as a spent invite
is); the clinician's link needs the clinician logged in with their own identity, as that subject.

State changes reach the booking system by polling `GET /bookings?since=` or, when `booking_webhooks` names
a URL for its subject, by a POST of the same body to that URL, signed with `X-Nettlege-Signature`
(HMAC-SHA256 of the body with the server's key). Delivery is at least once and carries each booking's
current state: a round runs in one process at a time, and the cursor moves only after a 2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any

import aiohttp
import jwt
from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from rooms.audit import Action
from rooms.bookings import OPENS_BEFORE_S, Booking, changed_at
from rooms.errors import Gone, NotFound
from rooms.keys import Keys
from rooms.models import Channel, Consultation, ConsultationState, Outcome, Principal, Role
from rooms.stats import oslo_day
from rooms.tenants import OSLO

from ..appkeys import AUTH, CONFIG, HTTP, STORE
from ..auth import AuthError
from ..http import Api, ApiError, Body, bearer_token, require_tenant
from ..periodic import periodic
from ..policy import public_base
from .limits import write_allowed
from .stats import DAY

log = logging.getLogger(__name__)
api = Api()
BOOKER = (Role.BOOKING,)
HOSTS = (Role.CLINICIAN, Role.NURSE)
LINK_AUDIENCE = "nettlege-booking-link"
LINK_VALID_AFTER_SLOT_S = 2 * 86400
MAX_AHEAD_S = 366 * 86400
SWEEP_INTERVAL_S = 2.0
POLL_WINDOW_S = 7 * 86400  # polling sees bookings whose slot is at most this long ago
WEBHOOK_LOCK_MS = 15_000
WEBHOOK_TIMEOUT_S = 5.0

Subject = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class CreateBookingIn(Body):
    tenant: Slug
    service: Slug
    slot_at: float = Field(gt=0, description="the slot's start, Unix seconds")
    host: Subject = Field(description="the host clinician's subject (HelseID)")
    host_name: Name
    citizen: Subject = Field(description="the citizen's subject (ID-porten pid or the booking system's id)")
    citizen_name: Name
    channel: Channel = Channel.VIDEO


class RescheduleIn(Body):
    slot_at: float = Field(gt=0)


class LinkIn(Body):
    link: Annotated[str, StringConstraints(min_length=10, max_length=2048)]


class Links(BaseModel):
    citizen: str
    clinician: str


class BookingOut(BaseModel):
    consultation_id: str
    tenant: str
    service: str
    slot_at: float
    opens_at: float
    host: str
    state: str = Field(description="booked, cancelled or no-show; else the consultation's state")
    consultation_state: str
    outcome: str | None
    changed_at: float
    links: Links | None = None


class BookingsOut(BaseModel):
    now: float = Field(description="pass as `since` on the next poll")
    bookings: list[BookingOut]


class LinkOut(BaseModel):
    consultation_id: str
    role: Role
    display_name: str
    session_token: str | None = Field(description="the citizen's token for this consultation; none for staff")


class HostBookingOut(BaseModel):
    consultation_id: str
    service: str
    slot_at: float
    opens_at: float
    state: str
    citizen_name: str


def _base(request: web.Request) -> str:
    return public_base(request.app[CONFIG])  # links never follow the Host header


def _sign_link(request: web.Request, b: Booking, subject: str, role: Role) -> str:
    config = request.app[CONFIG]
    assert config.secret_key
    token = jwt.encode({"aud": LINK_AUDIENCE, "tenant": b.tenant, "cid": b.consultation_id, "sub": subject,
                        "role": role.value, "iat": int(time.time()),
                        "exp": int(b.slot_at + LINK_VALID_AFTER_SLOT_S)}, config.secret_key, algorithm="HS256")
    return f"{_base(request)}/#/booking/{token}"


def _out(request: web.Request | None, b: Booking, c: Consultation, *, links: bool = False) -> BookingOut:
    state = b.state if b.state in ("cancelled", "no-show") else c.state.value
    return BookingOut(
        consultation_id=b.consultation_id, tenant=b.tenant, service=b.service, slot_at=b.slot_at,
        opens_at=b.slot_at - OPENS_BEFORE_S, host=b.host, state=state, consultation_state=c.state.value,
        outcome=c.outcome.value if c.outcome else None, changed_at=changed_at(b, c),
        links=Links(citizen=_sign_link(request, b, b.citizen, Role.CITIZEN),
                    clinician=_sign_link(request, b, b.host, Role.CLINICIAN)) if links and request else None)


def _check_slot(slot_at: float) -> None:
    now = time.time()
    if slot_at <= now or slot_at > now + MAX_AHEAD_S:
        raise ApiError(422, "invalid_slot", "Timen må ligge fram i tid, høyst ett år fram.")


async def _mine(request: web.Request, principal: Principal) -> Booking:
    """A booking this booking system made (others' answered 404)."""
    b = await request.app[STORE].bookings.get(principal.tenant, request.match_info["consultation_id"])
    if b.booker != principal.subject:
        raise NotFound("Fant ikke denne timen.", code="booking_not_found")
    return b


@api.route("POST", "/api/v1/bookings", summary="Book a slot with a host clinician; returns the join links",
           roles=BOOKER, body=CreateBookingIn, response=BookingOut, status=201, errors=(401, 403, 404, 422),
           tags=("bookings",))
async def create_booking(request: web.Request, principal: Principal, body: CreateBookingIn) -> BookingOut:
    require_tenant(principal, body.tenant)
    tenant = request.app[CONFIG].tenant(body.tenant)
    if tenant is None or tenant.service(body.service) is None:
        raise ApiError(404, "service_not_found", "Fant ikke denne tjenesten.")
    _check_slot(body.slot_at)
    await write_allowed(request, principal, "booking")
    store = request.app[STORE]
    b, c = await store.bookings.create(body.tenant, body.service, booker=principal.subject, host=body.host,
                                       host_name=body.host_name, citizen=body.citizen,
                                       citizen_name=body.citizen_name, slot_at=body.slot_at,
                                       no_show_after_s=request.app[CONFIG].booking_no_show_s, channel=body.channel)
    await store.audit.record(body.tenant, Action.CONSULTATION_CREATED, actor=principal.subject,
                             role=principal.role, consultation_id=c.id, booked="1")
    return _out(request, b, c, links=True)


@api.route("GET", "/api/v1/bookings", summary="Poll: my bookings that changed after `since`",
           roles=BOOKER, response=BookingsOut, errors=(401, 403, 422), tags=("bookings",),
           query={"since": "Unix seconds; the `now` of the previous answer (default 0: all)"})
async def poll_bookings(request: web.Request, principal: Principal, _b: None) -> BookingsOut:
    try:
        since = float(request.query.get("since", "0"))
    except ValueError:
        raise ApiError(422, "invalid_since", "since må være et tidspunkt i sekunder.") from None
    now = time.time()
    return BookingsOut(now=now, bookings=await _changes(request.app[STORE], principal.tenant, principal.subject,
                                                        since, now))


@api.route("GET", "/api/v1/bookings/{consultation_id}", summary="One of my bookings, with fresh join links",
           roles=BOOKER, response=BookingOut, errors=(401, 403, 404), tags=("bookings",))
async def get_booking(request: web.Request, principal: Principal, _b: None) -> BookingOut:
    b = await _mine(request, principal)
    store = request.app[STORE]
    c = await store.consultations.get(b.tenant, b.consultation_id)
    await store.audit.record_access(b.tenant, Action.CONSULTATION_VIEWED, actor=principal.subject,
                                    role=principal.role, consultation_id=c.id)
    return _out(request, b, c, links=c.state != ConsultationState.ENDED)


@api.route("PATCH", "/api/v1/bookings/{consultation_id}", summary="Move a slot that has not started",
           roles=BOOKER, body=RescheduleIn, response=BookingOut, errors=(401, 403, 404, 409, 422),
           tags=("bookings",))
async def reschedule_booking(request: web.Request, principal: Principal, body: RescheduleIn) -> BookingOut:
    b = await _mine(request, principal)
    _check_slot(body.slot_at)
    await write_allowed(request, principal, "booking")
    store = request.app[STORE]
    b = await store.rooms.reschedule_booking(principal, b, body.slot_at, request.app[CONFIG].booking_no_show_s)
    return _out(request, b, await store.consultations.get(b.tenant, b.consultation_id), links=True)


@api.route("DELETE", "/api/v1/bookings/{consultation_id}", summary="Cancel a slot that has not started",
           roles=BOOKER, status=204, errors=(401, 403, 404, 409), tags=("bookings",))
async def cancel_booking(request: web.Request, principal: Principal, _b: None) -> None:
    b = await _mine(request, principal)
    await request.app[STORE].rooms.cancel_booking(principal, b)


@api.route("POST", "/api/v1/bookings/links/redeem",
           summary="Open a join link: the citizen gets a session token; the host must be logged in as the host",
           public=True, body=LinkIn, response=LinkOut, errors=(401, 403, 404, 409, 410, 422), tags=("bookings",))
async def redeem_link(request: web.Request, _p: None, body: LinkIn) -> LinkOut:
    config, store = request.app[CONFIG], request.app[STORE]
    assert config.secret_key
    token = body.link.rsplit("/", 1)[-1]
    try:
        claims = jwt.decode(token, config.secret_key, algorithms=["HS256"], audience=LINK_AUDIENCE,
                            options={"require": ["exp", "sub", "aud"]})
        tenant, cid, subject, role = claims["tenant"], claims["cid"], claims["sub"], Role(claims["role"])
    except jwt.ExpiredSignatureError:
        raise Gone("Lenken er utløpt.", code="link_expired") from None
    except (jwt.PyJWTError, KeyError, ValueError):
        raise NotFound("Lenken er ukjent.", code="link_unknown") from None
    b = await store.bookings.get(tenant, cid)
    c = await store.consultations.get(tenant, cid)
    if c.state == ConsultationState.ENDED:
        raise Gone("Timen er avsluttet eller avlyst.", code="consultation_ended")
    opens_at = b.slot_at - OPENS_BEFORE_S
    if time.time() < opens_at:
        opens = datetime.fromtimestamp(opens_at, OSLO)
        raise ApiError(409, "not_open_yet", f"Venterommet åpner {opens:%d.%m. kl. %H:%M}, 15 minutter før timen.")
    me = c.participant_for(subject)
    if me is None:  # pragma: no cover - the booking admitted both
        raise NotFound("Lenken er ukjent.", code="link_unknown")
    if role == Role.CITIZEN:
        principal = Principal(subject=subject, role=Role.CITIZEN, tenant=tenant, name=me.display_name,
                              issuer="booking-link")
        session = request.app[AUTH].issue_session_token(principal, cid, me.id)
        await store.audit.record(tenant, Action.INVITE_REDEEMED, actor=subject, role=Role.CITIZEN.value,
                                 consultation_id=cid, via="booking-link")
        return LinkOut(consultation_id=cid, role=role, display_name=me.display_name, session_token=session)
    # Staff never join on a link alone: they log in with their own identity, and it must be the host.
    bearer = bearer_token(request)
    if bearer is None:
        raise ApiError(401, "login_required", "Logg inn for å åpne denne timen.", {"WWW-Authenticate": "Bearer"})
    try:
        who = await request.app[AUTH].verify(bearer)
    except AuthError as e:
        raise ApiError(401, e.code, e.message, {"WWW-Authenticate": "Bearer"}) from None
    if who.tenant != tenant or who.subject != subject or who.consultation_id:
        raise ApiError(403, "not_the_host", "Denne lenken er til en annen behandler.")
    return LinkOut(consultation_id=cid, role=role, display_name=me.display_name, session_token=None)


@api.route("GET", "/api/v1/me/bookings", summary="My booked consultations on a day (host clinician's dashboard)",
           roles=HOSTS, response=list[HostBookingOut], errors=(401, 403, 422), tags=("bookings",),
           query={"day": "Europe/Oslo day, YYYY-MM-DD (default today)"})
async def my_bookings(request: web.Request, principal: Principal, _b: None) -> list[dict[str, Any]]:
    day = request.query.get("day") or oslo_day(time.time())
    try:
        valid = bool(DAY.fullmatch(day)) and date.fromisoformat(day).isoformat() == day
    except ValueError:
        valid = False
    if not valid:
        raise ApiError(422, "invalid_date", "day må være en dato på formen ÅÅÅÅ-MM-DD.")
    store = request.app[STORE]
    out = []
    for c in await store.bookings.of_host(principal.tenant, principal.subject, day):
        citizen = next((p for p in c.participants if p.role == Role.CITIZEN), None)
        # the list shows the citizen's name: an access to that consultation (once per quarter hour)
        await store.audit.record_access(principal.tenant, Action.CONSULTATION_VIEWED, actor=principal.subject,
                                        role=principal.role, consultation_id=c.id)
        slot = c.scheduled_at or 0.0
        out.append(HostBookingOut(consultation_id=c.id, service=c.service, slot_at=slot,
                                  opens_at=slot - OPENS_BEFORE_S,
                                  state="no-show" if c.outcome == Outcome.NO_SHOW else c.state.value,
                                  citizen_name=citizen.display_name if citizen else "").model_dump(mode="json"))
    return out


async def _changes(store: Any, tenant: str, booker: str, since: float, now: float) -> list[BookingOut]:
    rows = await store.bookings.of_booker(tenant, booker, now - POLL_WINDOW_S)
    return sorted((o for o in (_out(None, b, c) for b, c in rows) if o.changed_at > since),
                  key=lambda o: o.changed_at)


def webhook_signature(secret: str, body: bytes) -> str:
    """`X-Nettlege-Signature`: HMAC-SHA256 of the body with the server's key, for the receiver to check."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver_webhooks(app: web.Application) -> int:
    """One round: each booking system with a webhook gets the changes since its cursor, from one process at a
    time (a short Redis lock), at least once (the cursor moves only after a 2xx). Returns changes delivered."""
    config, store = app[CONFIG], app[STORE]
    delivered = 0
    for tenant in config.tenants:
        k = Keys(tenant.id)
        for booker, url in config.booking_webhooks.items():
            lock = k.booking_webhook_lock(booker)
            token = secrets.token_hex(8)
            if not await store.redis.set(lock, token, nx=True, px=WEBHOOK_LOCK_MS):
                continue
            try:
                now = time.time()
                since = float(await store.redis.get(k.booking_webhook_cursor(booker)) or 0)
                changes = await _changes(store, tenant.id, booker, since, now)
                if not changes:
                    continue
                body = BookingsOut(now=now, bookings=changes).model_dump_json().encode()
                assert config.secret_key
                headers = {"Content-Type": "application/json",
                           "X-Nettlege-Signature": webhook_signature(config.secret_key, body)}
                async with app[HTTP].post(url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)) as resp:
                    if resp.status // 100 != 2:
                        log.warning("booking webhook answered %s; retrying next round", resp.status)
                        continue
                await store.redis.set(k.booking_webhook_cursor(booker), str(changes[-1].changed_at))
                delivered += len(changes)
            except (aiohttp.ClientError, TimeoutError):
                log.warning("booking webhook not reachable; retrying next round")
            finally:
                if await store.redis.get(lock) == token:
                    await store.redis.delete(lock)
    return delivered


async def webhook_sender(app: web.Application) -> AsyncIterator[None]:
    """Delivers booking changes to configured webhooks (polling `GET /bookings?since=` gives the same)."""
    async def loop() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await deliver_webhooks(app)
            except Exception:  # Redis briefly away: try again next round
                log.warning("booking webhook round failed", exc_info=True)

    task = None if not app[CONFIG].booking_webhooks else asyncio.create_task(loop(), name="booking-webhooks")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def no_show_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Ends unattended slots as no-show, on every process; the store makes sure only one ends each."""
    async def sweep() -> None:
        config, store = app[CONFIG], app[STORE]
        for tenant in config.tenants:
            try:
                await store.rooms.end_no_shows(tenant.id)  # audited and announced
            except Exception:  # Redis briefly away: try again next round
                log.warning("no-show sweep failed for a tenant", exc_info=True)

    async with periodic("booking-no-show-sweeper", SWEEP_INTERVAL_S, sweep, at_start=False):
        yield
