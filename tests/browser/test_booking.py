"""A booked consultation from link to video: the booking system books a slot, the citizen opens their link
(no login), the clinician sees it on the dashboard's list of today's bookings, opens it, and both get video.
Before the window the citizen's link says when the waiting room opens."""

from __future__ import annotations

import time

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, has_route, screen, session_token
from .media_checks import wait_for_video

pytestmark = pytest.mark.browser

SIGNAL = "/api/v1/consultations/{consultation_id}/signal"


async def _book(base: str, slot_at: float, host: str = "dr-booket") -> dict:
    async with ClientSession() as http:
        async with http.post(f"{base}/api/v1/dev/token", json={"sub": "booksys", "role": "booking",
                                                               "tenant": "oslo", "name": "Bookingsystem"}) as r:
            token = (await r.json())["token"]
        async with http.post(f"{base}/api/v1/bookings", headers={"Authorization": f"Bearer {token}"}, json={
                "tenant": "oslo", "service": "nettlege", "slot_at": slot_at, "host": host,
                "host_name": "Dr. Booket", "citizen": "kari-b", "citizen_name": "Kari Booket"}) as r:
            assert r.status == 201, await r.text()
            return await r.json()


async def test_booked_consultation_from_link_to_video(server, pages) -> None:
    base, app = server
    if not has_route(app, SIGNAL):
        pytest.skip("the signaling WebSocket is not wired into the app")
    # The clinician's link needs a login first: without one it asks for it.
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Booket")
    host = await doctor.evaluate("() => JSON.parse(sessionStorage.getItem('nettlege.session')).user.sub")
    booking = await _book(base, time.time() + 300, host)  # in five minutes: the waiting room is open
    citizen_link = booking["links"]["citizen"]
    assert citizen_link.startswith(base + "/#/booking/")

    citizen = await pages.open(citizen_link, phone=True)  # no login: the link is enough for the citizen
    await citizen.locator("#room-status").wait_for(timeout=15_000)
    await screen(citizen, "booking-citizen-waiting")

    # Today's bookings on the dashboard, then into the room through the clinician's link.
    await doctor.reload()
    row = doctor.locator(f"#bookings-today li[data-consultation='{booking['consultation_id']}']")
    await row.get_by_text("Kari Booket").wait_for()
    await row.get_by_role("button", name="Åpne timen").wait_for()
    await screen(doctor, "dashboard-bookings")
    await doctor.goto(booking["links"]["clinician"])
    await doctor.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=15_000)
    await doctor.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await wait_for_video(doctor)
    await wait_for_video(citizen)
    await doctor.locator("#participants").get_by_text("Kari Booket").wait_for()

    # Ended after a real conversation: the statistics count the booking, the outcome and a duration.
    token = await session_token(doctor)
    async with ClientSession() as http:
        async with http.post(f"{base}/api/v1/consultations/{booking['consultation_id']}/end",
                             json={"outcome": "physical-followup"},
                             headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
        async with http.post(f"{base}/api/v1/dev/token", json={"sub": "adm", "role": "admin", "tenant": "oslo",
                                                               "name": "Admin"}) as r:
            admin = (await r.json())["token"]
        async with http.get(f"{base}/api/v1/tenants/oslo/stats", headers={"Authorization": f"Bearer {admin}"}) as r:
            nettlege = next(s for s in (await r.json())["services"] if s["service"] == "nettlege")
    assert nettlege["bookings"]["created"] == 1
    assert nettlege["consultations"]["ended"] == 1
    assert nettlege["consultations"]["outcomes"]["physical-followup"] == 1
    assert nettlege["consultations"]["duration_s"]["p50"] is not None  # it started: both were connected


async def test_a_link_before_its_window_says_when_it_opens(server, pages) -> None:
    base, _ = server
    booking = await _book(base, time.time() + 3 * 3600)
    page = await pages.open(booking["links"]["citizen"], phone=True)
    await page.locator("#booking-error").get_by_text("Venterommet åpner").wait_for()
    assert "15 minutter før timen" in await page.locator("#booking-error").inner_text()
    await screen(page, "booking-not-yet")
