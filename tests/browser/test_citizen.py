"""Citizen flows before the consultation: services open and closed, joining the queue, the waiting room
with live position and the pre-call check, leaving, and coming back after the network drops."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, screen

pytestmark = pytest.mark.browser


async def test_closed_service_shows_opening_hours_116117_and_113(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/")
    await screen(page, "login")
    await dev_login(page, "citizen", "Kari Nordmann")
    await page.wait_for_selector(".service-list li")
    closed = page.locator(".service", has_text="Alltid stengt")
    await closed.locator(".badge-closed").get_by_text("Stengt nå").wait_for()
    assert "er stengt nå" in await closed.locator(".closed-message").inner_text()
    assert await closed.locator("a[href='tel:116117']").count() == 1
    assert await closed.locator("a[href='tel:113']").count() == 1
    assert "Stengt" in await closed.locator("table.hours").inner_text()
    assert await closed.get_by_role("link", name="Kontakt Alltid stengt").count() == 0
    open_ = page.locator(".service", has_text="Legevakt")
    await open_.locator(".badge-open").get_by_text("Åpen nå").wait_for()
    await screen(page, "services")
    # The join page of a closed service says the same, and offers no form.
    await page.goto(base + "/#/join/oslo/stengt")
    await page.locator(".closed-message").wait_for()
    assert await page.locator("#reason").count() == 0
    assert await page.locator("#main a[href='tel:113']").count() == 1
    await screen(page, "join-closed")


async def test_citizen_joins_queue_sees_live_position_and_runs_precall_check(server, pages) -> None:
    base, _ = server
    first = await pages.open(base + "/", phone=True)
    await dev_login(first, "citizen", "Ola Først")
    await first.goto(base + "/#/join/oslo/nettlege")
    await first.fill("#reason", "Feber i tre dager")
    await screen(first, "join")
    await first.click("#main form button[type=submit]")
    await first.locator("#queue-position").get_by_text("Du er nummer 1 i køen").wait_for()

    second = await pages.open(base + "/", phone=True)
    await dev_login(second, "citizen", "Kari Andre")
    await second.goto(base + "/#/join/oslo/nettlege")
    await second.check("#ch-phone")
    await second.fill("#callback-phone", "912 34 567")
    await second.fill("#reason", "Trenger resept")
    await second.click("#main form button[type=submit]")
    await second.locator("#queue-position").get_by_text("Du er nummer 2 i køen").wait_for()
    assert "912 34 567" in await second.locator("#main").inner_text()
    await screen(second, "waiting-phone")

    # Pre-call check: camera preview plays, the microphone meter moves, the connection answers.
    await first.click("#precall-start")
    await first.locator("#check-camera.ok").wait_for()
    await first.locator("#check-connection.ok").wait_for()
    await first.wait_for_function("() => document.querySelector('#mic-level').value > 0", timeout=10_000)
    await first.wait_for_function("() => document.querySelector('video.preview').videoWidth > 0")
    await screen(first, "waiting-precall")

    # The first leaves (after saying yes to the question): the second moves up without reloading.
    await first.click("#leave-queue")
    await first.click("#leave-queue-dialog-yes")
    await first.wait_for_function("() => location.hash === '#/services'")
    await second.locator("#queue-position").get_by_text("Du er nummer 1 i køen").wait_for(timeout=10_000)


async def test_waiting_room_reconnects_to_the_same_place_after_going_offline(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await dev_login(page, "citizen", "Per Nett")
    await page.goto(base + "/#/join/oslo/legevakt")
    await page.fill("#reason", "Vondt i øret")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    url = page.url
    ticket_id = url.rsplit("/", 1)[1]

    await page.context.set_offline(True)
    banner = page.locator("#conn-banner")
    await banner.get_by_text("Kobler til igjen").wait_for(timeout=10_000)
    assert await banner.get_attribute("role") == "status"
    await screen(page, "waiting-reconnecting")
    await page.context.set_offline(False)
    await banner.wait_for(state="hidden", timeout=15_000)
    assert page.url == url
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()

    # The server still has the same ticket waiting.
    token = await page.evaluate("() => JSON.parse(sessionStorage.getItem('nettlege.session')).token")
    async with ClientSession() as http, http.get(f"{base}/api/v1/tickets/{ticket_id}",
                                                 headers={"Authorization": f"Bearer {token}"}) as resp:
        ticket = await resp.json()
    assert ticket["state"] == "waiting" and ticket["position"] == 1


async def test_norwegian_by_default_english_selectable_and_kept(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", locale="de-DE")  # a language we do not have: bokmål
    await page.get_by_role("heading", name="Logg inn").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "nb"
    await page.select_option("#lang-select", "en")
    await page.get_by_role("heading", name="Log in").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "en"
    await dev_login(page, "citizen", "Emma English")
    await page.get_by_role("heading", name="Contact a doctor").wait_for()
    closed = page.locator(".service", has_text="Alltid stengt")
    await closed.locator(".badge-closed").get_by_text("Closed now").wait_for()
    await screen(page, "services-en")
    await page.reload()
    await page.get_by_role("heading", name="Contact a doctor").wait_for()
    await page.goto(base + "/#/join/oslo/legevakt")
    await page.get_by_text("How do you want to talk to the doctor?").wait_for()
    # Switching back translates the page in place.
    await page.select_option("#lang-select", "nb")
    await page.get_by_text("Hvordan vil du snakke med legen?").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "nb"


async def test_pages_run_under_the_servers_content_security_policy(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", bypass_csp=False)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await page.evaluate("() => { window.__csp = []; document.addEventListener('securitypolicyviolation', "
                        "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); }")
    await dev_login(page, "citizen", "Streng Policy")
    await page.goto(base + "/#/join/oslo/legevakt")
    await page.fill("#reason", "Test")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    await page.click("#precall-start")
    await page.locator("#check-connection.ok").wait_for()
    assert not violations, violations
    assert await page.evaluate("() => window.__csp") == []


async def test_login_and_joining_the_queue_work_with_the_keyboard_alone(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await page.wait_for_selector("#dev-name")
    await page.focus("#skip-link")  # the first stop on the page
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.keyboard.press("Tab")  # from the start of the main content to the first field
    assert await page.evaluate("document.activeElement.id") == "dev-name"
    await page.keyboard.type("Tastatur Bruker")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "dev-role"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "dev-tenant"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Kontakt legen").wait_for()
    # Focus moves to the new view's heading, so a screen reader starts there.
    assert await page.evaluate("document.activeElement.tagName") == "H1"
    link = page.get_by_role("link", name="Kontakt Legevakt")
    await link.focus()
    await page.keyboard.press("Enter")
    await page.locator("#ch-video").wait_for()
    await page.focus("#ch-video")
    await page.keyboard.press("ArrowDown")  # radio group: arrow keys choose
    assert await page.is_checked("#ch-chat")
    await page.focus("#reason")
    await page.keyboard.type("Utslett")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    # A visible focus indicator on buttons.
    await page.focus("#leave-queue")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
