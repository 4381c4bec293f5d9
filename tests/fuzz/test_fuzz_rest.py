"""Every JSON route under hostile input: any body, path, query and token gets a 4xx `{"error", "message"}`
or a success -- never a 5xx, never an unhandled exception in the logs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from signaling.api import build_api
from signaling.http import Route

from .conftest import Live, examples
from .strategies import RAW_BODIES, json_values, objects, text

ROUTES = build_api().routes


async def _token(http: aiohttp.ClientSession, base: str, sub: str, role: str, tenant: str = "oslo") -> str:
    async with http.post(f"{base}/api/v1/dev/token", json={"sub": sub, "role": role, "tenant": tenant,
                                                           "name": f"Fuzz {sub}"}) as r:
        assert r.status == 200
        return (await r.json())["token"]


async def _setup(live: Live) -> dict[str, Any]:
    """Real objects to aim at: tokens for every role, a consultation, a ticket, an invite."""
    http = aiohttp.ClientSession()
    base = live.base
    tokens = {role: await _token(http, base, f"fz-{role}", role)
              for role in ("citizen", "clinician", "nurse", "operator", "interpreter", "relative", "admin", "booking")}
    tokens["other-tenant"] = await _token(http, base, "fz-bergen", "clinician", "bergen")
    auth = {"Authorization": f"Bearer {tokens['clinician']}"}
    async with http.post(f"{base}/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                         headers=auth) as r:
        cid = (await r.json())["id"]
    async with http.post(f"{base}/api/v1/consultations/{cid}/invites", json={"role": "relative"}, headers=auth) as r:
        invite = (await r.json())["token"]
    async with http.post(f"{base}/api/v1/tenants/oslo/services/nettlege/queue", json={"channel": "video",
                         "reason": "fuzz"}, headers={"Authorization": f"Bearer {tokens['citizen']}"}) as r:
        ticket = (await r.json())["ticket_id"]
    ids = {"consultation_id": cid, "ticket_id": ticket, "token": invite, "tenant": "oslo", "service": "nettlege",
           "participant_id": "p_x", "attachment_id": "a_x"}
    return {"http": http, "tokens": tokens, "ids": ids}


def _path(route: Route, ids: dict[str, str], params: dict[str, str]) -> str:
    path = route.path
    for name in ids:
        if "{" + name + "}" in path:
            value = params.get(name, ids[name])
            path = path.replace("{" + name + "}", quote(value.encode("utf-8", "surrogatepass"), safe="") or "x")
    return path


def request_for(route: Route, extra: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    fields = list(route.body.model_fields) if route.body else []
    body = st.one_of(objects(fields, extra, values), values, st.sampled_from(RAW_BODIES), st.binary(max_size=200))
    return st.fixed_dictionaries({
        "route": st.just(route),
        "token": st.sampled_from(["citizen", "clinician", "nurse", "operator", "interpreter", "relative", "admin",
                                  "booking", "other-tenant", None, "garbage"]),
        "params": st.dictionaries(st.sampled_from(["consultation_id", "ticket_id", "token", "tenant", "service",
                                                   "participant_id"]), text(extra), max_size=1),
        "body": body if route.method != "GET" else st.none(),
        # query values stay short: a request line over 8 KiB is refused by aiohttp's HTTP parser (a plain 400)
        # before the application sees it
        "query": st.dictionaries(st.sampled_from([*route.query, "format", "limit", "x"]),
                                 text(extra).filter(lambda v: len(v) < 1000), max_size=2),
    })


async def _send(state: dict[str, Any], live: Live, req: dict[str, Any]) -> tuple[int, str, bytes]:
    route: Route = req["route"]
    headers = {}
    if req["token"] == "garbage":
        headers["Authorization"] = "Bearer not.a.token"
    elif req["token"]:
        headers["Authorization"] = f"Bearer {state['tokens'][req['token']]}"
    body = req["body"]
    data: bytes | None = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    url = live.base + _path(route, state["ids"], req["params"])
    async with state["http"].request(route.method, url, data=data, headers=headers, params=req["query"] or None,
                                     allow_redirects=False) as r:
        return r.status, r.content_type, await r.read()


def test_every_json_route_answers_hostile_requests_with_a_clean_4xx(live: Live) -> None:
    state = live.client.run(_setup(live))
    extra = [state["ids"]["consultation_id"], state["ids"]["ticket_id"], state["ids"]["token"]]
    seen: dict[int, int] = {}

    values = json_values(extra)  # built once: building strategies per example costs more than the requests
    per_route = [request_for(r, extra, values) for r in ROUTES]

    @examples(400)
    @given(st.one_of(per_route))
    def check(req: dict[str, Any]) -> None:
        status, content_type, raw = live.client.run(_send(state, live, req))
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (req["route"].method, req["route"].path, status, raw[:300])
        if status >= 400:
            assert content_type == "application/json", (status, raw[:200])
            err = json.loads(raw)
            assert isinstance(err.get("error"), str) and isinstance(err.get("message"), str), err

    try:
        check()
    finally:
        live.client.run(state["http"].close())
    assert not live.crashes.records, live.crashes.describe()  # type: ignore[attr-defined]
    print("statuses", sorted(seen.items()))
    assert any(s < 300 for s in seen) and any(400 <= s < 500 for s in seen), seen  # it reached both sides
