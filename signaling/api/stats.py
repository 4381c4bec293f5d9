"""Statistics for the pilot evaluation (role admin of the tenant): JSON, or CSV with small cells suppressed."""

from __future__ import annotations

import re
import time
from datetime import date

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.models import Principal, Role
from rooms.stats import MAX_DAYS, oslo_day, to_csv

from ..appkeys import CONFIG, STORE
from ..http import Access, Api, ApiError, require_tenant

api = Api()
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# The response shapes, for the OpenAPI document (rooms/stats.py builds the dict itself).
class Tickets(BaseModel):
    joined: int
    taken: int
    left: int
    abandoned: int


class Quantiles(BaseModel):
    p50: float | None
    p90: float | None


class Bucket(BaseModel):
    le: int | None = Field(description="upper bound in seconds, inclusive; null: above the last bound")
    count: int


class ConsultationFigures(BaseModel):
    ended: int
    outcomes: dict[str, int]
    duration_s: Quantiles
    duration_histogram: list[Bucket]


class RemoteDoctor(BaseModel):
    requested: int = Field(description="tickets a nurse (satellite legevakt) queued for a remote doctor")
    taken: int


class Bookings(BaseModel):
    created: int
    cancelled: int
    rescheduled: int


class Hour(BaseModel):
    hour: int
    joined: int
    taken: int


class ServiceStats(BaseModel):
    service: str
    tickets: Tickets
    channels: dict[str, int]
    wait_s: Quantiles
    wait_histogram: list[Bucket]
    consultations: ConsultationFigures
    remote_doctor: RemoteDoctor
    bookings: Bookings
    by_hour: list[Hour]


class StatsOut(BaseModel):
    tenant: str
    from_: str = Field(alias="from")
    to: str
    services: list[ServiceStats]


def _day(request: web.Request, name: str, today: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return today
    try:
        if DAY.fullmatch(raw):  # exactly YYYY-MM-DD (fromisoformat also takes 20260310 and week dates)
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise ApiError(422, "invalid_date", f"{name} må være en dato på formen ÅÅÅÅ-MM-DD.")


def period(request: web.Request) -> tuple[date, date]:
    """`from` and `to` (Europe/Oslo days, inclusive), both today when left out."""
    today = date.fromisoformat(oslo_day(time.time()))
    first, last = _day(request, "from", today), _day(request, "to", today)
    if last < first:
        raise ApiError(422, "invalid_period", "Til-datoen kan ikke være før fra-datoen.")
    if (last - first).days >= MAX_DAYS:
        raise ApiError(422, "invalid_period", f"En periode kan være høyst {MAX_DAYS} dager.")
    return first, last


@api.route("GET", "/api/v1/tenants/{tenant}/stats",
           summary="Anonymous figures per service for a period (admin); ?format=csv suppresses counts 1-4",
           roles=(Role.ADMIN,), response=StatsOut, errors=(401, 403, 404, 422), tags=("admin",), access=Access.TENANT,
           query={"from": "first Europe/Oslo day, YYYY-MM-DD (default today)",
                  "to": "last day, inclusive (default today)",
                  "format": "json (default) or csv"})
async def stats(request: web.Request, principal: Principal, _b: None) -> web.Response | dict[str, object]:
    tenant_id = request.match_info["tenant"]
    require_tenant(principal, tenant_id)
    tenant = request.app[CONFIG].tenant(tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "Fant ikke dette.")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(422, "invalid_format", "format må være json eller csv.")
    first, last = period(request)
    report = await request.app[STORE].stats.report(tenant.id, [s.id for s in tenant.services], first, last)
    if fmt == "csv":
        name = f"nettlege-{tenant.id}-{first}-{last}.csv"
        return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return report
