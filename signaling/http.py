"""The HTTP layer's conventions: one JSON error shape, validated bodies, a route table with roles.

Every 4xx is `{"error": code, "message": text}`. Handlers are declared with `Api.route`, which records
method, path, roles, the access condition, body and response models; the same table builds the aiohttp
router, the OpenAPI document, the authorization table in docs/security.md and the access-matrix test,
so none of them can drift apart. The wrapper enforces the condition before the handler runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.errors import Conflict, DomainError, Forbidden, Gone, NotFound, RateLimited, Unavailable
from rooms.models import Consultation, ParticipantState, Principal, Role

from . import policy
from .appkeys import STORE
from .auth import AuthError
from .identity import verify

log = logging.getLogger(__name__)

class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class Body(BaseModel):
    """Request bodies: unknown fields and wrong types are refused, not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


# RateLimited is answered before these (it carries Retry-After); any other DomainError is a 400.
_DOMAIN_STATUS: list[tuple[type[DomainError], int]] = [(NotFound, 404), (Forbidden, 403), (Gone, 410), (Conflict, 409)]


def _unavailable(code: str, message: str, retry_after_s: int) -> web.Response:
    return web.json_response({"error": code, "message": message, "retry_after_s": retry_after_s}, status=503,
                             headers={"Retry-After": str(retry_after_s)})


def _validation_message(err: ValidationError) -> str:
    # Field names and rules only: the rejected values may be patient data and must not echo into logs.
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'body'}: {e['msg']}" for e in err.errors())


@web.middleware
async def error_middleware(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.headers)
    except AuthError as e:
        return error_response(401, e.code, e.message, {"WWW-Authenticate": "Bearer"})
    except RateLimited as e:
        return error_response(429, e.code, e.message, {"Retry-After": str(e.retry_after_s)})
    except Unavailable as e:  # a failover, or too few replicas confirmed the change: nothing acked, retry
        return _unavailable(e.code, e.message, e.retry_after_s)
    except DomainError as e:
        status = next((s for kind, s in _DOMAIN_STATUS if isinstance(e, kind)), 400)
        return error_response(status, e.code, e.message)
    except ValidationError as e:
        return error_response(422, "invalid_body", _validation_message(e))
    except (RedisConnectionError, RedisTimeoutError):
        # Redis away or every pooled connection busy: a clear, retryable answer instead of a 500.
        log.warning("store unavailable on %s %s", request.method, request.path)
        return _unavailable("store_unavailable", "Tjenesten er midlertidig overbelastet. Prøv igjen.", 2)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body_too_large", "Forespørselen er for stor.")
    except web.HTTPException as e:
        if e.status < 400 or not request.path.startswith("/api/"):
            raise
        code = e.reason.lower().replace(" ", "_")
        return error_response(e.status, code, e.text if e.text and not e.text.startswith(str(e.status))
                              else e.reason, {k: v for k, v in e.headers.items() if k == "Allow"})
    except OSError:
        if not request.path.startswith("/static/"):
            raise
        # a static path the file system refuses (name too long, ...) names no file we serve
        return web.Response(status=404, text="404: Not Found")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.match_info.route.resource
                      and request.match_info.route.resource.canonical)
        return error_response(500, "internal", "Noe gikk galt hos oss. Prøv igjen.")


async def read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Parse and validate a JSON object body. Strict JSON-mode validation: enums from their string
    values, but no "1" for 1 and no unknown fields."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send JSON med Content-Type: application/json.")
    raw = await request.read()  # bounded by the app's client_max_size
    parsed = parse_json(raw)
    if parsed is None:
        raise ApiError(400, "bad_json", "Forespørselen er ikke gyldig JSON.")
    if not isinstance(parsed, dict):
        raise ApiError(422, "invalid_body", "Forespørselen må være et JSON-objekt.")
    return model.model_validate_json(raw)


MAX_JSON_DEPTH = 32


def parse_json(raw: str | bytes) -> Any:
    """JSON as the REST API and the signaling socket accept it, or None: no nesting deeper than
    MAX_JSON_DEPTH (the parser would hit the recursion limit), no lone UTF-16 surrogates (they cannot be
    stored or encoded as UTF-8)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _utf8_safe(item):
                return None
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return None
            for key, v in (item.items() if isinstance(item, dict) else enumerate(item)):
                if isinstance(key, str) and not _utf8_safe(key):
                    return None
                stack.append((v, depth + 1))
    return value


def _utf8_safe(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Handler = Callable[..., Awaitable[Any]]


class Access(StrEnum):
    """The condition a route checks beyond the caller's role (the `condition` column in docs/security.md)."""

    PUBLIC = "public"
    LOGGED_IN = "logged_in"
    TENANT = "tenant"
    TICKET = "ticket"
    TICKET_OWNER = "ticket_owner"
    KNOCK = "knock"
    PARTICIPANT = "participant"
    HOST = "host"


ACCESS_RULES: dict[Access, str] = {
    Access.PUBLIC: "anyone, no token",
    Access.LOGGED_IN: "any valid token; the caller's own data only",
    Access.TENANT: "the tenant in the path is the caller's (else 404)",
    Access.TICKET: "the ticket's owner, or staff of its tenant (reads of personal data audited)",
    Access.TICKET_OWNER: "the ticket's owner only (anyone else: 404)",
    Access.KNOCK: "a consultation of the caller's tenant; not after a deny; knocks rate-limited per consultation",
    Access.PARTICIPANT: "an admitted participant of the consultation (lobby and denied: 403; others: 404)",
    Access.HOST: "an admitted clinician, nurse or operator of the consultation, logged in with their own "
                 "identity (never through an invite)",
}
CONSULTATION = web.RequestKey("consultation", Consultation)


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    roles: frozenset[Role] | None  # None: any authenticated principal
    public: bool = False
    body: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    scoped: bool = False  # a session principal bound to one consultation may call it
    query: dict[str, str] = field(default_factory=dict)
    access: Access = Access.LOGGED_IN


class Api:
    """A route table. Handlers take (request, principal, body) and return a JSON-able value or a Response."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, path: str, *, summary: str, roles: Iterable[Role] | None = None,
              public: bool = False, body: type[BaseModel] | None = None, response: Any = None,
              status: int = 200, errors: tuple[int, ...] = (), tags: tuple[str, ...] = (),
              scoped: bool = False, query: dict[str, str] | None = None,
              access: Access | None = None) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.routes.append(Route(method, path, fn, summary, frozenset(roles) if roles else None, public,
                                     body, response, status, errors, tags, scoped, query or {},
                                     access or (Access.PUBLIC if public else Access.LOGGED_IN)))
            return fn
        return register

    def include(self, other: Api) -> None:
        self.routes.extend(other.routes)

    def add_to(self, app: web.Application) -> None:
        for r in self.routes:
            app.router.add_route(r.method, r.path, _wrap(r))


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        principal = None
        if not route.public:
            token = bearer_token(request)
            if token is None:
                raise ApiError(401, "unauthorized", "Du må logge inn.", {"WWW-Authenticate": "Bearer"})
            principal = await verify(request.app, token)
            if route.roles is not None and principal.role not in route.roles:
                raise ApiError(403, "forbidden", "Du har ikke tilgang til dette.")
            if principal.consultation_id and not route.scoped:
                raise ApiError(403, "forbidden", "Denne innloggingen gjelder bare én konsultasjon.")
            if route.access in (Access.PARTICIPANT, Access.HOST):
                request[CONSULTATION] = await load_consultation(request, principal,
                                                                host=route.access is Access.HOST)
        body = None
        if route.body is not None:
            body = await read_body(request, route.body)
        result = await route.handler(request, principal, body)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        if isinstance(result, BaseModel):  # pydantic writes the JSON itself (no dict in between)
            return web.Response(text=result.model_dump_json(), content_type="application/json", status=route.status)
        return web.json_response(result, status=route.status)
    handler.__name__ = route.handler.__name__
    return handler


async def load_consultation(request: web.Request, principal: Principal, *, host: bool = False) -> Consultation:
    """The consultation of the path if the caller is an admitted participant (a host when `host`).

    Not a participant, another tenant's or another consultation than a session token's: 404 (ids are not
    even confirmed). Waiting in the lobby or denied: 403 not_admitted. A guest or a non-host role: 403."""
    cid = request.match_info["consultation_id"]
    if principal.consultation_id and principal.consultation_id != cid:
        raise NotFound("Fant ikke denne konsultasjonen.", code="consultation_not_found")
    consultation = await request.app[STORE].consultations.get(principal.tenant, cid)
    me = consultation.participant_for(principal.subject)
    if me is None:
        raise NotFound("Fant ikke denne konsultasjonen.", code="consultation_not_found")
    if me.state != ParticipantState.ADMITTED:
        raise ApiError(403, "not_admitted", "Du er ikke sluppet inn i denne konsultasjonen.")
    if host and not policy.is_host(principal):
        raise ApiError(403, "forbidden", "Bare behandler i konsultasjonen kan gjøre dette.")
    return consultation


def consultation_of(request: web.Request) -> Consultation:
    """The consultation the route's access check loaded (routes declared PARTICIPANT or HOST)."""
    return request[CONSULTATION]


def require_tenant(principal: Principal, tenant: str) -> None:
    """No cross-tenant access; answered as 404 so ids of other tenants are not even confirmed."""
    if principal.tenant != tenant:
        raise ApiError(404, "not_found", "Fant ikke dette.")
