"""The municipality admin's routes: service settings (opening hours, closures) and the audit trail's status.

Settings are stored in Redis (rooms/service_settings.py) over the config file's defaults, so every node
serves them at once (GET /services, joining a queue); each change is recorded in the audit trail.
"""

from __future__ import annotations

import time
from datetime import date

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.audit import Action
from rooms.models import Principal, Role
from rooms.tenants import OpeningHours, Service, Tenant

from ..appkeys import CONFIG, STORE
from ..audit_wiring import AUDIT_SEALER
from ..http import Access, Api, ApiError, Body, require_tenant

api = Api()
ADMIN = (Role.ADMIN,)


class SettingsIn(OpeningHours):
    """Opening hours as in the config file ('HH:MM-HH:MM', 'closed' or '24/7' per weekday, `default` for the
    rest) and closures: dates closed all day. The whole setting is replaced. The config file's model, read
    strictly like every request body (dates only as YYYY-MM-DD strings, no numbers for text)."""

    model_config = Body.model_config


class SettingsOut(BaseModel):
    tenant: str
    service: str
    source: str = Field(description="config (the file's defaults) or runtime (set by an admin)")
    opening_hours: dict[str, str]
    closures: list[date]


class AuditStatusOut(BaseModel):
    intact: bool
    problems: list[str] = Field(description="ids of entries or checkpoints that do not verify (at most 20)")
    problem_count: int
    checked_at: float


def _tenant_service(request: web.Request, principal: Principal) -> tuple[Tenant, Service]:
    require_tenant(principal, request.match_info["tenant"])
    tenant = request.app[CONFIG].tenant(principal.tenant)
    service = tenant.service(request.match_info["service"]) if tenant else None
    if tenant is None or service is None:
        raise ApiError(404, "service_not_found", "Fant ikke denne tjenesten.")
    return tenant, service


async def _out(request: web.Request, tenant: Tenant, service: Service) -> SettingsOut:
    runtime = await request.app[STORE].service_settings.opening_hours(tenant.id, service.id)
    hours = runtime or service.opening_hours
    return SettingsOut(tenant=tenant.id, service=service.id, source="runtime" if runtime else "config",
                       opening_hours=hours.describe(), closures=sorted(hours.closures))


@api.route("GET", "/api/v1/tenants/{tenant}/services/{service}/settings",
           summary="A service's opening hours and closures (admin)", roles=ADMIN, response=SettingsOut,
           errors=(401, 403, 404), tags=("admin",), access=Access.TENANT)
async def get_settings(request: web.Request, principal: Principal, _b: None) -> SettingsOut:
    return await _out(request, *_tenant_service(request, principal))


@api.route("PUT", "/api/v1/tenants/{tenant}/services/{service}/settings",
           summary="Replace a service's opening hours and closures (admin; audited)", roles=ADMIN,
           body=SettingsIn, response=SettingsOut, errors=(401, 403, 404, 422), tags=("admin",),
           access=Access.TENANT)
async def put_settings(request: web.Request, principal: Principal, body: SettingsIn) -> SettingsOut:
    tenant, service = _tenant_service(request, principal)
    store = request.app[STORE]
    await store.service_settings.set_opening_hours(tenant.id, service.id, OpeningHours(**dict(body)))
    await store.audit.record(tenant.id, Action.SETTINGS_CHANGED, actor=principal.subject, role=principal.role,
                             service=service.id)
    return await _out(request, tenant, service)


@api.route("DELETE", "/api/v1/tenants/{tenant}/services/{service}/settings",
           summary="Back to the config file's opening hours (admin; audited)", roles=ADMIN, response=SettingsOut,
           errors=(401, 403, 404), tags=("admin",), access=Access.TENANT)
async def reset_settings(request: web.Request, principal: Principal, _b: None) -> SettingsOut:
    tenant, service = _tenant_service(request, principal)
    store = request.app[STORE]
    if await store.service_settings.clear(tenant.id, service.id):
        await store.audit.record(tenant.id, Action.SETTINGS_CHANGED, actor=principal.subject, role=principal.role,
                                 service=service.id, reset="1")
    return await _out(request, tenant, service)


@api.route("GET", "/api/v1/tenants/{tenant}/audit/status",
           summary="Whether the tenant's audit trail verifies against its sealed checkpoints (admin)",
           roles=ADMIN, response=AuditStatusOut, errors=(401, 403, 404), tags=("admin",), access=Access.TENANT)
async def audit_status(request: web.Request, principal: Principal, _b: None) -> AuditStatusOut:
    require_tenant(principal, request.match_info["tenant"])
    if request.app[CONFIG].tenant(principal.tenant) is None:
        raise ApiError(404, "not_found", "Fant ikke dette.")
    problems = await request.app[AUDIT_SEALER].verify(principal.tenant)
    return AuditStatusOut(intact=not problems, problems=problems[:20], problem_count=len(problems),
                          checked_at=time.time())
