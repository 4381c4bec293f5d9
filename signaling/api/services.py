"""Services of every tenant with their open/closed state and queue length (public)."""

from datetime import UTC, datetime

from aiohttp import web

from rooms.tenants import closed_message

from ..appkeys import CONFIG, STORE
from ..http import Api
from .schemas import ServiceOut

api = Api()


@api.route("GET", "/api/v1/services", summary="List services with open state and queue length", public=True,
           response=list[ServiceOut], tags=("queue",), query={"tenant": "only this tenant"})
async def list_services(request: web.Request, _p: None, _b: None) -> list[dict[str, object]]:
    config, store = request.app[CONFIG], request.app[STORE]
    only = request.query.get("tenant")
    now = datetime.now(UTC)
    out = []
    for tenant in config.tenants:
        if only and tenant.id != only:
            continue
        for s in await store.service_settings.effective(tenant):  # runtime opening hours and closures applied
            is_open = s.opening_hours.is_open(now)
            out.append(ServiceOut(
                tenant=tenant.id, tenant_name=tenant.name, service=s.id, name=s.name, open=is_open,
                opening_hours=s.opening_hours.describe(), closures=list(s.opening_hours.closures),
                channels=list(s.channels),
                queue_length=await store.queue.length(tenant.id, s.id),
                closed_message=None if is_open else closed_message(tenant, s, now)).model_dump(mode="json"))
    return out
