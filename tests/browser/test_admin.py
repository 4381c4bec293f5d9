"""The admin view: the period's figures per service with plots drawn by Chart.js (pixels on every canvas) and
a data table beside each, the CSV download, the audit trail's status, and a settings change that GET /services
serves at once."""

from __future__ import annotations

import shutil
import time

import pytest
from aiohttp import ClientSession

from rooms.stats import oslo_day

from .conftest import ROOT, dev_login, screen

pytestmark = pytest.mark.browser

# Counts non-blank pixels of a canvas (anything not fully transparent and not white).
INK = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
  }
  return {n, w: c.width, h: c.height};
}"""


async def _token(http: ClientSession, base: str, sub: str, role: str) -> dict[str, str]:
    async with http.post(f"{base}/api/v1/dev/token", json={"sub": sub, "role": role, "tenant": "oslo",
                                                           "name": f"Navn {sub}"}) as r:
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def _a_morning(base: str) -> None:
    """Six citizens on every channel, four taken and ended with different outcomes, one leaves."""
    async with ClientSession() as http:
        doc = await _token(http, base, "dr-1", "clinician")
        tickets = []
        for i, channel in enumerate(["video", "chat", "phone", "video", "video", "chat"]):
            body = {"channel": channel, "reason": "hoste"}
            if channel == "phone":
                body["callback_phone"] = "+4791234567"
            me = await _token(http, base, f"k{i}", "citizen")
            async with http.post(f"{base}/api/v1/tenants/oslo/services/nettlege/queue", json=body, headers=me) as r:
                assert r.status == 201
                tickets.append((me, (await r.json())["ticket_id"]))
        for outcome in ("resolved", "physical-followup", "referred", "resolved"):
            async with http.post(f"{base}/api/v1/tenants/oslo/services/nettlege/queue/take", headers=doc) as r:
                cid = (await r.json())["consultation_id"]
            async with http.post(f"{base}/api/v1/consultations/{cid}/end", json={"outcome": outcome},
                                 headers=doc) as r:
                assert r.status == 200
        me, tid = tickets[-1]
        async with http.delete(f"{base}/api/v1/tickets/{tid}", headers=me) as r:
            assert r.status == 204


async def test_admin_view_plots_tables_csv_audit_and_settings(server, pages, tmp_path) -> None:
    base, _ = server
    await _a_morning(base)
    # Under the real Content-Security-Policy first: Chart.js must load and draw under it.
    strict = await pages.open(base + "/", bypass_csp=False)
    await dev_login(strict, "admin", "Anne Admin")
    assert strict.url.endswith("#/admin")
    await strict.locator("#stats-status").get_by_text("Viser").wait_for()
    for plot in ("wait", "hours", "outcomes", "channels"):
        assert (await strict.evaluate(INK, f"svc-nettlege-{plot}-canvas"))["n"] > 200
    # The rest where axe-core may be injected.
    page = await pages.open(base + "/")
    await dev_login(page, "admin", "Anne Admin")
    await page.locator("#stats-status").get_by_text("Viser").wait_for()
    # the figures table of the service
    summary = await page.locator("#svc-nettlege-summary").inner_text()
    assert "Kom i kø\t6" in summary and "Tatt inn av behandler\t4" in summary and "Forlot køen\t1" in summary
    # every plot drew something, and has its data table beside it
    for plot in ("wait", "hours", "outcomes", "channels"):
        ink = await page.evaluate(INK, f"svc-nettlege-{plot}-canvas")
        assert ink["w"] > 100 and ink["n"] > 200, (plot, ink)
        assert await page.locator(f"#svc-nettlege-{plot}-table tbody tr").count() >= 3
    channels = await page.locator("#svc-nettlege-channels-table").inner_text()
    assert "Video\t3" in channels and "Chat\t2" in channels and "Telefon\t1" in channels
    outcomes = await page.locator("#svc-nettlege-outcomes-table").inner_text()
    assert "Avklart\t2\t50 %" in outcomes
    hours = await page.locator("#svc-nettlege-hours-table").inner_text()
    hour = time.strftime("%H", time.localtime())  # only for the shape: rows 00..23
    assert len(hours.strip().split("\n")) == 25 and hour.isdigit()
    # the audit trail verifies
    await page.locator("#audit-status.audit-ok").wait_for()
    await screen(page, "admin")
    # after the phone-width screenshot the plots grow back to the desktop width
    width = "(id) => document.getElementById(id).clientWidth"
    await page.wait_for_function(f"() => ({width})('svc-nettlege-wait-canvas') > 400")
    shutil.copy(ROOT / "test-artifacts" / "screenshots" / "admin-desktop.png", ROOT / "test-artifacts" / "admin.png")

    # CSV download, small counts suppressed
    async with page.expect_download() as dl:
        await page.click("#stats-csv")
    path = tmp_path / "stats.csv"
    await (await dl.value).save_as(path)
    text = path.read_text()
    assert text.startswith("tenant,from,to,service,figure,value")
    assert "oslo,{d},{d},nettlege,tickets.joined,6".format(d=oslo_day(time.time())) in text
    assert ",nettlege,tickets.left,<5" in text

    # settings: Saturdays and Sundays closed, and today a holiday; GET /services serves it at once
    today = oslo_day(time.time())
    await page.fill("#set-nettlege-sat", "closed")
    await page.fill("#set-nettlege-sun", "closed")
    await page.fill("#set-nettlege-closures", today)
    await page.click("#set-nettlege-save")
    await page.locator("#set-nettlege-msg").get_by_text("Lagret").wait_for()
    assert "Endret av administrator" in await page.locator("#set-nettlege-source").inner_text()
    async with ClientSession() as http, http.get(f"{base}/api/v1/services?tenant=oslo") as r:
        nettlege = next(s for s in await r.json() if s["service"] == "nettlege")
    assert nettlege["opening_hours"]["sat"] == "closed" and nettlege["opening_hours"]["sun"] == "closed"
    assert nettlege["closures"] == [today] and nettlege["open"] is False
    await screen(page, "admin-settings")
    # and back to the configuration's hours
    await page.click("#set-nettlege-reset")
    await page.locator("#set-nettlege-source").get_by_text("Standard fra konfigurasjonen").wait_for()
    async with ClientSession() as http, http.get(f"{base}/api/v1/services?tenant=oslo") as r:
        assert next(s for s in await r.json() if s["service"] == "nettlege")["open"] is True


async def test_admin_period_picker_and_bad_period(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await dev_login(page, "admin", "Anne Admin")
    await page.locator("#stats-status").get_by_text("Viser").wait_for()
    await page.get_by_role("button", name="Siste 7 dager").click()
    first, last = await page.input_value("#stats-from"), await page.input_value("#stats-to")
    assert first < last
    await page.locator("#stats-status").get_by_text(f"Viser {first} til {last}").wait_for()
    # nothing wider than the phone: no sideways scrolling
    assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await page.fill("#stats-from", "2026-12-31")
    await page.fill("#stats-to", "2026-01-01")
    await page.click("#stats-form button[type=submit]")
    await page.locator("#admin-error").get_by_text("fra-datoen").wait_for()
    await screen(page, "admin-phone-error")
    # English: the figures and plots are drawn again in the new language
    await page.fill("#stats-from", await page.input_value("#stats-to"))
    await page.select_option("#lang-select", "en")
    await page.locator("#svc-nettlege-summary").get_by_text("Joined the queue").wait_for()
    await page.locator("#audit-status").get_by_text("audit trail verifies").wait_for()
