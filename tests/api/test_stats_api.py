"""The statistics route over HTTP: a scripted day on one process and on two sharing the Redis, checked
figure by figure in JSON and CSV (small cells suppressed); bad periods; who may read it."""

import asyncio
import csv
import io
import time
from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rooms.stats import oslo_day, suppressed
from rooms.store import connect
from signaling.app import build_app
from tests.chat.conftest import ORIGIN
from tests.chat.conftest import connect as sio_connect
from tests.conftest import bearer, close_app, dev_token

OUTCOMES = ["resolved", "physical-followup", "referred", "emergency", "resolved"]


async def _until(check, timeout_s: float = 30.0):
    """Wait on a condition (the sweeps run on their own interval), never on a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@pytest.fixture
async def apps(make_config, redis_url, request):
    """`request.param` app processes on one Redis (each with its own store, sweeps and Socket.IO server)."""
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    clients = []
    for _ in range(request.param):
        c = TestClient(TestServer(build_app(make_config(queue_grace_s=0, booking_no_show_s=1,
                                                        allowed_origins=[ORIGIN])), host="127.0.0.1"))
        await c.start_server()
        clients.append(c)
    yield clients
    for c in clients:
        await close_app(c)


def _period() -> str:
    today = date.fromisoformat(oslo_day(time.time()))
    return f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"


def _flatten(prefix, value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else k, v)
    else:
        yield prefix, value


async def scripted_day(apps) -> dict:
    """Joins on every channel, takes, ends with every outcome, a leave, an abandon, bookings (one no-show,
    one cancelled, one moved), spread over the app processes in turn. Returns what it measured."""
    turn = [0]

    def app():
        turn[0] += 1
        return apps[turn[0] % len(apps)]

    a0 = apps[0]
    doc = await dev_token(a0, "dr-1", "clinician")
    nurse = await dev_token(a0, "n-1", "nurse")
    booker = await dev_token(a0, "booksys", "booking")
    started = time.monotonic()
    tickets = {}
    for who, channel in [("k1", "video"), ("k2", "chat"), ("k3", "phone"), ("k4", "video"), ("k7", "video"),
                         ("k5", "video"), ("k6", "chat")]:
        token = await dev_token(a0, who, "citizen")
        body = {"channel": channel, "reason": "hoste"}
        if channel == "phone":
            body["callback_phone"] = "+4791234567"
        resp = await app().post("/api/v1/tenants/oslo/services/nettlege/queue", json=body, headers=bearer(token))
        assert resp.status == 201, await resp.text()
        tickets[who] = (token, (await resp.json())["ticket_id"])
    resp = await app().post("/api/v1/tenants/oslo/services/legevakt/queue", json={"channel": "video", "reason": "r"},
                            headers=bearer(nurse))
    assert resp.status == 201
    consultations = []
    for _ in OUTCOMES:
        resp = await app().post("/api/v1/tenants/oslo/services/nettlege/queue/take", headers=bearer(doc))
        assert resp.status == 200
        consultations.append((await resp.json())["consultation_id"])
    resp = await app().post("/api/v1/tenants/oslo/services/legevakt/queue/take", headers=bearer(doc))
    consultations.append((await resp.json())["consultation_id"])
    waited_at_most = time.monotonic() - started
    for cid, outcome in zip(consultations, [*OUTCOMES, "resolved"], strict=True):
        resp = await app().post(f"/api/v1/consultations/{cid}/end", json={"outcome": outcome}, headers=bearer(doc))
        assert resp.status == 200, await resp.text()
    # k5 leaves; k6's live connection drops and stays away past the grace period (0 s here)
    token, tid = tickets["k5"]
    assert (await app().delete(f"/api/v1/tickets/{tid}", headers=bearer(token))).status == 204
    token, tid = tickets["k6"]
    sio = await sio_connect(str(app().make_url("")), token)
    ack = await sio.sio.call("watch_ticket", {"ticket_id": tid}, timeout=5)
    assert ack.get("state", "waiting") == "waiting", ack
    await sio.sio.disconnect()

    async def abandoned():
        got = await (await a0.get(f"/api/v1/tickets/{tid}", headers=bearer(token))).json()
        return got["state"] == "abandoned"
    await _until(abandoned)
    # bookings: one nobody attends (no-show), one cancelled, one moved
    ids = []
    for i in range(3):
        resp = await app().post("/api/v1/bookings", headers=bearer(booker), json={
            "tenant": "oslo", "service": "nettlege", "slot_at": time.time() + 2 + i * 3600, "host": "dr-1",
            "host_name": "Dr En", "citizen": f"b{i}", "citizen_name": f"Innbygger {i}"})
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["consultation_id"])
    assert (await app().delete(f"/api/v1/bookings/{ids[1]}", headers=bearer(booker))).status == 204
    resp = await app().patch(f"/api/v1/bookings/{ids[2]}", json={"slot_at": time.time() + 7200},
                             headers=bearer(booker))
    assert resp.status == 200

    async def no_show():
        got = await (await a0.get(f"/api/v1/bookings/{ids[0]}", headers=bearer(booker))).json()
        return got["state"] == "no-show"
    await _until(no_show)
    return {"waited_at_most": waited_at_most}


@pytest.mark.parametrize("apps", [1, 2], indirect=True, ids=["one-process", "two-processes"])
async def test_scripted_day_figure_by_figure_in_json_and_csv(apps):
    measured = await scripted_day(apps)
    admin = await dev_token(apps[0], "adm", "admin")
    resp = await apps[-1].get(f"/api/v1/tenants/oslo/stats?{_period()}", headers=bearer(admin))
    assert resp.status == 200
    report = await resp.json()
    by_service = {s["service"]: s for s in report["services"]}
    assert set(by_service) == {"nettlege", "legevakt", "stengt"}
    nl, lv = by_service["nettlege"], by_service["legevakt"]
    assert nl["tickets"] == {"joined": 7, "taken": 5, "left": 1, "abandoned": 1}
    assert nl["channels"] == {"video": 4, "chat": 2, "phone": 1}
    assert nl["consultations"]["ended"] == 6
    assert nl["consultations"]["outcomes"] == {"resolved": 2, "physical-followup": 1, "referred": 1,
                                               "emergency": 1, "no-show": 1}
    # no consultation here started media, so none has a duration (durations: tests/store/test_stats.py)
    assert nl["consultations"]["duration_s"] == {"p50": None, "p90": None}
    assert nl["bookings"] == {"created": 3, "cancelled": 1, "rescheduled": 1}
    assert nl["remote_doctor"] == {"requested": 0, "taken": 0}
    assert sum(b["count"] for b in nl["wait_histogram"]) == 5
    if measured["waited_at_most"] <= 15:  # every wait in the first bucket, (0, 15] s
        assert nl["wait_s"] == {"p50": 7.5, "p90": 13.5}
    assert sum(h["joined"] for h in nl["by_hour"]) == 7 and sum(h["taken"] for h in nl["by_hour"]) == 5
    assert lv["tickets"] == {"joined": 1, "taken": 1, "left": 0, "abandoned": 0}
    assert lv["remote_doctor"] == {"requested": 1, "taken": 1}
    assert lv["consultations"]["outcomes"]["resolved"] == 1

    resp = await apps[0].get(f"/api/v1/tenants/oslo/stats?{_period()}&format=csv", headers=bearer(admin))
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    values = {(r["service"], r["figure"]): r["value"] for r in rows}
    checked = 0
    for s in report["services"]:
        for figure, value in _flatten("", {k: v for k, v in s.items()
                                           if k not in ("service", "by_hour", "wait_histogram")}):
            if figure.startswith("consultations.duration_histogram"):
                continue
            if isinstance(value, int):
                assert values[(s["service"], figure)] == suppressed(value), figure
                checked += 1
        for h in s["by_hour"]:
            assert values[(s["service"], f"by_hour.{h['hour']:02d}.joined")] == suppressed(h["joined"])
    assert checked > 40
    assert values[("nettlege", "tickets.joined")] == "7"
    assert values[("nettlege", "tickets.taken")] == "5"
    assert values[("nettlege", "tickets.left")] == "<5"
    assert values[("nettlege", "consultations.outcomes.no-show")] == "<5"
    assert values[("legevakt", "wait_s.p50")] == ""  # one wait: no percentile in the export


async def test_period_defaults_and_bad_input(app_client):
    admin = await dev_token(app_client, "adm", "admin")
    resp = await app_client.get("/api/v1/tenants/oslo/stats", headers=bearer(admin))
    body = await resp.json()
    assert resp.status == 200 and body["from"] == body["to"] == oslo_day(time.time())
    assert [len(s["by_hour"]) for s in body["services"]] == [24, 24, 24]
    for query in ("from=2026-13-01", "from=yesterday", "to=2026-1-1", "from=2026-03-10&to=2026-03-09",
                  "from=2024-01-01&to=2026-01-01", "format=xml", "from=2026-W10-2", "to=20260310"):
        resp = await app_client.get(f"/api/v1/tenants/oslo/stats?{query}", headers=bearer(admin))
        assert resp.status == 422, query
        assert set(await resp.json()) == {"error", "message"}


async def test_only_the_tenants_admin_reads_its_statistics(app_client):
    for role in ("citizen", "clinician", "nurse", "operator", "booking"):
        token = await dev_token(app_client, f"u-{role}", role)
        assert (await app_client.get("/api/v1/tenants/oslo/stats", headers=bearer(token))).status == 403
    bergen_admin = await dev_token(app_client, "adm-b", "admin", tenant="bergen")
    resp = await app_client.get("/api/v1/tenants/oslo/stats", headers=bearer(bergen_admin))
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await app_client.get("/api/v1/tenants/oslo/stats?format=csv", headers=bearer(bergen_admin))
    assert resp.status == 404
    assert (await app_client.get("/api/v1/tenants/oslo/stats")).status == 401
