"""The HTTP layer's conventions: one JSON error shape, validated bodies, a route table with roles.

Every 4xx is `{"error": code, "message": text}`. Handlers are declared with `Api.route`, which records
method, path, roles, body and response models; the same table builds the aiohttp router and the
OpenAPI document, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.errors import Conflict, DomainError, Forbidden, Gone, NotFound, RateLimited, Unavailable
from rooms.models import Principal, Role

from .appkeys import AUTH
from .auth import AuthError

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
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "Forespørselen er ikke gyldig JSON.") from None
    if not isinstance(parsed, dict):
        raise ApiError(422, "invalid_body", "Forespørselen må være et JSON-objekt.")
    return model.model_validate_json(raw)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Handler = Callable[..., Awaitable[Any]]


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


class Api:
    """A route table. Handlers take (request, principal, body) and return a JSON-able value or a Response."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, path: str, *, summary: str, roles: Iterable[Role] | None = None,
              public: bool = False, body: type[BaseModel] | None = None, response: Any = None,
              status: int = 200, errors: tuple[int, ...] = (), tags: tuple[str, ...] = (),
              scoped: bool = False, query: dict[str, str] | None = None) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.routes.append(Route(method, path, fn, summary, frozenset(roles) if roles else None, public,
                                     body, response, status, errors, tags, scoped, query or {}))
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
            principal = await request.app[AUTH].verify(token)
            if route.roles is not None and principal.role not in route.roles:
                raise ApiError(403, "forbidden", "Du har ikke tilgang til dette.")
            if principal.consultation_id and not route.scoped:
                raise ApiError(403, "forbidden", "Denne innloggingen gjelder bare én konsultasjon.")
        body = None
        if route.body is not None:
            body = await read_body(request, route.body)
        result = await route.handler(request, principal, body)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return web.json_response(result, status=route.status)
    handler.__name__ = route.handler.__name__
    return handler


def require_tenant(principal: Principal, tenant: str) -> None:
    """No cross-tenant access; answered as 404 so ids of other tenants are not even confirmed."""
    if principal.tenant != tenant:
        raise ApiError(404, "not_found", "Fant ikke dette.")
