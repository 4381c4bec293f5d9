"""The caller's own view: who accessed my consultations."""

from aiohttp import web

from rooms.models import STAFF_ROLES, Principal

from ..appkeys import STORE
from ..http import Api
from .schemas import AccessEntryOut

api = Api()


@api.route("GET", "/api/v1/me/access-log", summary="Who accessed the consultations I took part in",
           response=list[AccessEntryOut], errors=(401,), tags=("me",))
async def access_log(request: web.Request, principal: Principal, _b: None) -> list[dict[str, object]]:
    store = request.app[STORE]
    out = []
    for cid in await store.consultations.of_subject(principal.tenant, principal.subject):
        for e in await store.audit.for_consultation(principal.tenant, cid):
            f = e.fields
            out.append(AccessEntryOut(ts=float(f["ts"]), action=f["action"], actor_role=f["role"],
                                      actor=f["actor"] if f["role"] in STAFF_ROLES else None,
                                      actor_is_me=f["actor"] == principal.subject,
                                      consultation_id=f.get("consultation_id")).model_dump(mode="json"))
    return sorted(out, key=lambda e: e["ts"])
