"""The turn alert as a system notification through the service worker (issue 13, item 1): Chrome on Android
refuses `new Notification(...)`, so the waiting room registers /sw.js and the alert goes through
`ServiceWorkerRegistration.showNotification`. Real Chromium, the page under the server's own CSP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import ClientSession

from .conftest import PHONE, dev_login
from .test_patient_experience import api_token, take_next

pytestmark = pytest.mark.browser

TURN_TAG = "nettlege-turn"
CONSOLE: list[str] = []  # warnings and errors of the citizens' pages in this module
# The notifications the service worker's registration shows right now, as plain data.
SHOWN = """(tag) => navigator.serviceWorker.ready
    .then(r => r.getNotifications({tag}))
    .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction})))"""


async def wait_shown(page: Any, done: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Poll the worker's notifications until `done` (a JS predicate on the list) holds; returns the list.
    (wait_for_function does not await a promise the predicate returns.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        shown = await page.evaluate(SHOWN, TURN_TAG)
        if await page.evaluate(done, shown):
            return shown
        assert loop.time() < deadline, f"notifications never matched {done}: {shown}; console: {CONSOLE}"
        await page.wait_for_timeout(100)


async def citizen_with_notifications(pages: Any, base: str, name: str) -> Any:
    """A citizen on a phone who has allowed notifications, waiting in the legevakt chat queue; the page runs
    under the server's CSP (no bypass), so the worker must be allowed by it."""
    ctx = await pages.browser.new_context(viewport=PHONE, locale="nb-NO", bypass_csp=False,
                                          permissions=["notifications", "camera", "microphone"])
    pages.contexts.append(ctx)
    page = await ctx.new_page()
    page.on("pageerror", lambda e: pages.errors.append(f"{base}: {e}"))
    # the client says on the console why a turn alert did not go through the worker: shown if the test fails
    page.on("console", lambda m: CONSOLE.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    await page.goto(base + "/")
    await dev_login(page, "citizen", name)
    await page.goto(f"{base}/#/join/oslo/legevakt")
    await page.check("#ch-chat")
    await page.fill("#reason", "Vondt i halsen")
    await page.click("#main form button[type=submit]")
    await page.wait_for_function("() => /\\d/.test(document.querySelector('#queue-position')?.textContent)")
    return page


async def test_the_turn_alert_is_a_service_worker_notification(server, pages) -> None:
    base, _ = server
    citizen = await citizen_with_notifications(pages, base, "Siri Service")
    # Notifications were already allowed: the waiting room says so and has no button to ask again.
    await citizen.locator("#alerts-state").get_by_text("Varsler er på").wait_for()
    assert await citizen.locator("#enable-alerts").is_hidden()
    # ...and the worker is registered while waiting, before the turn comes (SHOWN waits for it to be active).
    assert await citizen.evaluate(SHOWN, TURN_TAG) == []

    await take_next(base, await api_token(base, "clinician", "Dr. Tjeneste"), "legevakt")
    [shown] = await wait_shown(citizen, "ns => ns.length > 0", timeout_s=30)  # generous: the machine may be busy
    assert shown == {"title": "Det er din tur!", "body": "Legen er klar for deg nå. Gå tilbake til nettlege.",
                     "tag": TURN_TAG, "requireInteraction": True}
    worker = await citizen.evaluate("""() => navigator.serviceWorker.getRegistration('/')
        .then(r => ({scope: r.scope, script: r.active && r.active.scriptURL}))""")
    assert worker == {"scope": base + "/", "script": base + "/sw.js"}
    # The rest of the alert is unchanged: the citizen goes on to the room.
    await citizen.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=10_000)


async def test_the_service_worker_is_served_as_javascript_with_the_security_headers(server) -> None:
    base, _ = server
    async with ClientSession() as http, http.get(f"{base}/sw.js") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/javascript"
        body = await resp.text()
        headers = resp.headers
    assert "notificationclick" in body
    assert 'addEventListener("fetch"' not in body  # no fetch handler: nothing personal passes through it
    assert "caches" not in body  # and no cache
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-cache"
    csp = headers["Content-Security-Policy"]
    assert "worker-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


# In the service worker: spy on what a tap does (Chromium lets a worker focus or open a window only during a
# real notification click, which no test API can make), then tap the notification with `tag` by dispatching
# notificationclick with the registration's own Notification object. Resolves with the spied calls.
TAP = """async (tag) => {
  const calls = [];
  WindowClient.prototype.focus = function () {  // tells the tab it was the one (a client's url may lag its #route)
    calls.push('focus'); this.postMessage('focused-by-tap'); return Promise.resolve(this);
  };
  Clients.prototype.openWindow = function (url) { calls.push({open: url}); return Promise.resolve(null); };
  const [n] = await self.registration.getNotifications({tag});
  try { self.dispatchEvent(new NotificationEvent('notificationclick', {notification: n})); } catch (e) {}
  for (let i = 0; i < 100 && !calls.length; i++) await new Promise(r => setTimeout(r, 50));
  const left = (await self.registration.getNotifications({tag})).length;
  return {calls, left};
}"""


async def test_tapping_the_turn_notification_brings_back_the_citizens_tab(server, pages) -> None:
    base, _ = server
    citizen = await citizen_with_notifications(pages, base, "Trykk Varsel")
    waiting_url = citizen.url
    assert "#/wait/" in waiting_url
    other = await citizen.context.new_page()  # another tab of ours, not the waiting room
    await other.goto(base + "/")
    await citizen.evaluate(SHOWN, TURN_TAG)  # the worker is active
    [worker] = citizen.context.service_workers
    assert worker.url == base + "/sw.js"

    await take_next(base, await api_token(base, "clinician", "Dr. Trykk"), "legevakt")
    await wait_shown(citizen, "ns => ns.length > 0", timeout_s=30)  # generous: the machine may be busy
    data = await citizen.evaluate("""(tag) => navigator.serviceWorker.ready
        .then(r => r.getNotifications({tag})).then(ns => ns[0].data)""", TURN_TAG)
    assert data["url"] == waiting_url and data["tab"]  # the tab that showed it
    await citizen.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=10_000)

    heard = "() => { window.__tapped = null; navigator.serviceWorker.onmessage = (e) => { window.__tapped = e.data; } }"
    await citizen.evaluate(heard)
    await other.evaluate(heard)
    tapped = await worker.evaluate(TAP, TURN_TAG)
    assert tapped == {"calls": ["focus"], "left": 0}
    await citizen.wait_for_function("() => window.__tapped === 'focused-by-tap'")  # the tab now in the room
    assert await other.evaluate("() => window.__tapped") is None  # not the other one

    # The citizen closed the page meanwhile: a tap opens the waiting room's address again.
    await other.close()
    await citizen.close()
    await worker.evaluate("""(url) => self.registration.showNotification('Det er din tur!',
        {tag: 'nettlege-turn', data: {url}})""", waiting_url)
    tapped = await worker.evaluate(TAP, TURN_TAG)
    assert tapped == {"calls": [{"open": waiting_url}], "left": 0}
