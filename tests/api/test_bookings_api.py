"""Bookings over HTTP: book with links, the links' window and who may use them, the host's day list,
move, cancel, polling for changes, and the no-show sweep."""

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rooms.stats import oslo_day
from rooms.store import connect
from signaling.api.bookings import deliver_webhooks, webhook_signature
from signaling.app import build_app
from tests.conftest import bearer, close_app, dev_token


async def _until(check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (value := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)
    return value


@pytest.fixture
async def client(make_config, redis_url):
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    c = TestClient(TestServer(build_app(make_config(booking_no_show_s=2)), host="127.0.0.1"))
    await c.start_server()
    yield c
    await close_app(c)


async def _book(client, booker, slot_at, host="dr-1", citizen="kari"):
    resp = await client.post("/api/v1/bookings", headers=bearer(booker), json={
        "tenant": "oslo", "service": "nettlege", "slot_at": slot_at, "host": host, "host_name": "Dr En",
        "citizen": citizen, "citizen_name": "Kari Nordmann"})
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _token(link: str) -> str:
    assert "/#/booking/" in link
    return link.rsplit("/", 1)[-1]


async def test_booking_links_open_the_room_for_the_citizen_and_the_logged_in_host(client):
    booker = await dev_token(client, "booksys", "booking")
    doc = await dev_token(client, "dr-1", "clinician", name="Dr En")
    other_doc = await dev_token(client, "dr-2", "clinician")
    b = await _book(client, booker, time.time() + 600)  # in 10 min: the waiting room is open
    assert b["state"] == "scheduled" and b["opens_at"] == pytest.approx(b["slot_at"] - 900)

    # the citizen's link alone gives a session token for this consultation only
    resp = await client.post("/api/v1/bookings/links/redeem", json={"link": b["links"]["citizen"]})
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["consultation_id"] == b["consultation_id"] and got["role"] == "citizen"
    assert got["display_name"] == "Kari Nordmann"
    session = got["session_token"]
    c = await (await client.get(f"/api/v1/consultations/{b['consultation_id']}", headers=bearer(session))).json()
    assert c["state"] == "scheduled" and c["me"]
    assert {p["role"] for p in c["participants"]} == {"clinician", "citizen"}
    assert (await client.get("/api/v1/tenants/oslo/services/nettlege/queue",
                             headers=bearer(session))).status == 403

    # the clinician's link needs the clinician logged in, as that clinician
    link = {"link": b["links"]["clinician"]}
    assert (await client.post("/api/v1/bookings/links/redeem", json=link)).status == 401
    resp = await client.post("/api/v1/bookings/links/redeem", json=link, headers=bearer(other_doc))
    assert resp.status == 403
    resp = await client.post("/api/v1/bookings/links/redeem", json=link, headers=bearer(doc))
    got = await resp.json()
    assert resp.status == 200 and got["session_token"] is None and got["role"] == "clinician"
    c = await (await client.get(f"/api/v1/consultations/{b['consultation_id']}", headers=bearer(doc))).json()
    assert c["me"] and c["scheduled_at"] == pytest.approx(b["slot_at"])

    # the host's dashboard lists today's bookings (if the slot is today in Oslo)
    today = await (await client.get("/api/v1/me/bookings", headers=bearer(doc))).json()
    if oslo_day(b["slot_at"]) == oslo_day(time.time()):
        assert [x["consultation_id"] for x in today] == [b["consultation_id"]]
        assert today[0]["citizen_name"] == "Kari Nordmann"
    day = oslo_day(b["slot_at"])
    listed = await (await client.get(f"/api/v1/me/bookings?day={day}", headers=bearer(doc))).json()
    assert [x["consultation_id"] for x in listed] == [b["consultation_id"]]
    assert await (await client.get(f"/api/v1/me/bookings?day={day}", headers=bearer(other_doc))).json() == []
    # listing shows the citizen's name to the host: audited as an access to that consultation
    from signaling.appkeys import STORE

    trail = await client.server.app[STORE].audit.for_consultation("oslo", b["consultation_id"])
    assert ("consultation.viewed", "dr-1") in {(e.fields["action"], e.fields["actor"]) for e in trail}
    assert ("consultation.created", "booksys") in {(e.fields["action"], e.fields["actor"]) for e in trail}


async def test_links_before_the_window_tampered_or_after_a_cancel(client):
    booker = await dev_token(client, "booksys", "booking")
    b = await _book(client, booker, time.time() + 3600)  # the waiting room opens in 45 min
    resp = await client.post("/api/v1/bookings/links/redeem", json={"link": b["links"]["citizen"]})
    body = await resp.json()
    assert resp.status == 409 and body["error"] == "not_open_yet" and "15 minutter" in body["message"]
    # moved to within 15 minutes: the same link opens (the window follows the booking)
    resp = await client.patch(f"/api/v1/bookings/{b['consultation_id']}", headers=bearer(booker),
                              json={"slot_at": time.time() + 300})
    assert resp.status == 200
    assert (await client.post("/api/v1/bookings/links/redeem", json={"link": b["links"]["citizen"]})).status == 200
    token = _token(b["links"]["citizen"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for link in (forged, "x" * 40, b["links"]["citizen"].replace("booking/", "booking/e")):
        resp = await client.post("/api/v1/bookings/links/redeem", json={"link": link})
        assert resp.status == 404 and (await resp.json())["error"] == "link_unknown"
    assert (await client.delete(f"/api/v1/bookings/{b['consultation_id']}", headers=bearer(booker))).status == 204
    resp = await client.post("/api/v1/bookings/links/redeem", json={"link": b["links"]["citizen"]})
    assert resp.status == 410
    # a cancelled booking cannot be cancelled or moved again
    assert (await client.delete(f"/api/v1/bookings/{b['consultation_id']}", headers=bearer(booker))).status == 409


async def test_polling_sees_each_change_once_and_no_show_ends_an_unattended_slot(client):
    booker = await dev_token(client, "booksys", "booking")
    first = await (await client.get("/api/v1/bookings", headers=bearer(booker))).json()
    assert first["bookings"] == []
    unattended = await _book(client, booker, time.time() + 1, citizen="a")
    later = await _book(client, booker, time.time() + 7200, citizen="b")
    poll = await (await client.get(f"/api/v1/bookings?since={first['now']}", headers=bearer(booker))).json()
    assert {x["consultation_id"] for x in poll["bookings"]} == {unattended["consultation_id"],
                                                               later["consultation_id"]}
    assert all(x["links"] is None for x in poll["bookings"])  # links only where asked for

    async def no_show_seen():
        got = await (await client.get(f"/api/v1/bookings?since={poll['now']}", headers=bearer(booker))).json()
        return got if got["bookings"] else None
    changed = await _until(no_show_seen)
    assert [(x["consultation_id"], x["state"], x["outcome"]) for x in changed["bookings"]] == [
        (unattended["consultation_id"], "no-show", "no-show")]
    again = await (await client.get(f"/api/v1/bookings?since={changed['now']}", headers=bearer(booker))).json()
    assert again["bookings"] == []
    got = await (await client.get(f"/api/v1/bookings/{later['consultation_id']}", headers=bearer(booker))).json()
    assert got["state"] == "scheduled" and got["links"]["citizen"]


async def test_bad_bookings_and_other_booking_systems(client):
    booker = await dev_token(client, "booksys", "booking")
    other = await dev_token(client, "booksys-2", "booking")
    bergen = await dev_token(client, "booksys-b", "booking", tenant="bergen")
    good = {"tenant": "oslo", "service": "nettlege", "slot_at": time.time() + 3600, "host": "dr-1",
            "host_name": "Dr", "citizen": "kari", "citizen_name": "Kari"}
    for change, status in [({"slot_at": time.time() - 60}, 422), ({"slot_at": time.time() + 400 * 86400}, 422),
                           ({"service": "nope"}, 404), ({"host": "dr 1"}, 422), ({"citizen_name": ""}, 422),
                           ({"extra": 1}, 422), ({"slot_at": "i morgen"}, 422)]:
        resp = await client.post("/api/v1/bookings", headers=bearer(booker), json={**good, **change})
        assert resp.status == status, change
        assert set(await resp.json()) == {"error", "message"}
    assert (await client.post("/api/v1/bookings", headers=bearer(bergen), json=good)).status == 404
    b = await _book(client, booker, time.time() + 3600)
    path = f"/api/v1/bookings/{b['consultation_id']}"
    for token in (other, bergen):
        assert (await client.get(path, headers=bearer(token))).status == 404
        assert (await client.delete(path, headers=bearer(token))).status == 404
        assert (await client.patch(path, json={"slot_at": time.time() + 60}, headers=bearer(token))).status == 404
    assert (await client.get("/api/v1/bookings?since=igår", headers=bearer(booker))).status == 422
    doc = await dev_token(client, "dr-1", "clinician")
    for day in ("i-dag", "20260310", "2026-W10-2", "2026-02-30"):
        assert (await client.get(f"/api/v1/me/bookings?day={day}", headers=bearer(doc))).status == 422
    assert (await client.post("/api/v1/bookings/links/redeem", json={"link": 5})).status == 422


async def test_webhook_delivers_each_change_once_from_two_processes_and_retries(make_config, redis_url):
    got: list[dict] = []
    failures = [1]  # the first delivery is refused: it must come again

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        assert request.headers["X-Nettlege-Signature"] == webhook_signature(config.secret_key, body)
        if failures[0]:
            failures[0] -= 1
            return web.Response(status=503)
        got.extend((b["consultation_id"], b["state"]) for b in (await request.json())["bookings"])
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    server = TestServer(receiver, host="127.0.0.1")
    await server.start_server()
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    config = make_config(booking_webhooks={"booksys": str(server.make_url("/hook"))})
    apps = [TestClient(TestServer(build_app(config), host="127.0.0.1")) for _ in range(2)]
    for a in apps:
        await a.start_server()
    try:
        booker = await dev_token(apps[0], "booksys", "booking")
        b = await _book(apps[0], booker, time.time() + 3600)
        cid = b["consultation_id"]

        async def delivered(n: int) -> bool:
            return len(got) >= n
        await _until(lambda: delivered(1))
        assert got == [(cid, "scheduled")] and failures == [0]
        assert (await apps[1].delete(f"/api/v1/bookings/{cid}", headers=bearer(booker))).status == 204
        await _until(lambda: delivered(2))
        # more rounds on both processes: nothing is sent twice
        for a in apps:
            assert await deliver_webhooks(a.server.app) == 0
        assert got == [(cid, "scheduled"), (cid, "cancelled")]
    finally:
        for a in apps:
            await close_app(a)
        await server.close()

