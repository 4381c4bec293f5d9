"""The caller's own view: who accessed my data.

A citizen sees the audit entries of the consultations where they are the admitted patient (a knock, a
lobby place or a deny shows nothing) and every staff read of their tickets (`ticket.read`). Other roles
are not data subjects here and get an empty list.
"""

from aiohttp import web

from rooms.audit import AuditEntry
from rooms.errors import NotFound
from rooms.models import STAFF_ROLES, ParticipantState, Principal, Role
from rooms.store import Store

from ..appkeys import STORE
from ..http import Api
from .schemas import AccessEntryOut

api = Api()


async def _my_consultations(store: Store, principal: Principal) -> list[str]:
    out = []
    for cid in await store.consultations.of_subject(principal.tenant, principal.subject):
        try:
            c = await store.consultations.get(principal.tenant, cid)
        except NotFound:
            continue
        me = c.participant_for(principal.subject)
        if me is not None and me.state == ParticipantState.ADMITTED and me.role == Role.CITIZEN:
            out.append(cid)
    return out


@api.route("GET", "/api/v1/me/access-log", summary="Who accessed my consultations and tickets (citizens)",
           response=list[AccessEntryOut], errors=(401,), tags=("me",))
async def access_log(request: web.Request, principal: Principal, _b: None) -> list[dict[str, object]]:
    store = request.app[STORE]
    if principal.role != Role.CITIZEN:
        return []
    entries: list[AuditEntry] = []
    names: dict[str, str] = {}  # staff subject -> the name they showed in my consultations (for the screen)
    for cid in await _my_consultations(store, principal):
        entries += await store.audit.for_consultation(principal.tenant, cid)
        c = await store.consultations.get(principal.tenant, cid)
        names.update({p.subject: p.display_name for p in c.participants if p.role in STAFF_ROLES})
    entries += await store.audit.for_subject(principal.tenant, principal.subject)  # staff reads of my tickets
    out = []
    for e in entries:
        f = e.fields
        out.append(AccessEntryOut(ts=float(f["ts"]), action=f["action"], actor_role=f["role"],
                                  actor=f["actor"] if f["role"] in STAFF_ROLES else None,
                                  actor_name=names.get(f["actor"]) if f["role"] in STAFF_ROLES else None,
                                  actor_is_me=f["actor"] == principal.subject,
                                  consultation_id=f.get("consultation_id"),
                                  ticket_id=f.get("ticket_id")).model_dump(mode="json"))
    return sorted(out, key=lambda e: e["ts"])
