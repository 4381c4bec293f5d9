"""The citizen's access log screen, "Hvem har sett mine opplysninger": per consultation, who (name and role,
never an internal id), what and when."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, screen, session_token

pytestmark = pytest.mark.browser


async def test_citizen_sees_who_accessed_their_consultation(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await dev_login(page, "citizen", "Kari Innsyn")
    me = {"Authorization": f"Bearer {await session_token(page)}"}
    async with ClientSession() as http:
        async with http.post(f"{base}/api/v1/dev/token", json={"sub": "helseid-123456", "role": "clinician",
                                                               "tenant": "oslo", "name": "Dr. Lise Lege"}) as r:
            doc = {"Authorization": f"Bearer {(await r.json())['token']}"}
        async with http.post(f"{base}/api/v1/tenants/oslo/services/nettlege/queue", headers=me,
                             json={"channel": "chat", "reason": "Utslett"}) as r:
            assert r.status == 201
        async with http.post(f"{base}/api/v1/tenants/oslo/services/nettlege/queue/take", headers=doc) as r:
            cid = (await r.json())["consultation_id"]
        async with http.get(f"{base}/api/v1/consultations/{cid}", headers=doc) as r:
            assert r.status == 200
        async with http.post(f"{base}/api/v1/consultations/{cid}/end", headers=doc,
                             json={"outcome": "resolved"}) as r:
            assert r.status == 200

    await page.get_by_role("link", name="Hvem har sett mine opplysninger").click()
    await page.locator("#accesslog-h").wait_for()
    log = page.locator("#access-log")
    section = log.locator("section", has_text="Konsultasjon")
    await section.first.wait_for()
    text = await log.inner_text()
    assert "Dr. Lise Lege" in text and "Lege" in text
    assert "Tok deg inn fra køen" in text and "Åpnet konsultasjonen" in text and "Avsluttet konsultasjonen" in text
    assert "helseid-123456" not in text and cid not in text  # names and roles, never internal ids
    assert await log.locator("time").count() >= 3
    await screen(page, "access-log")


async def test_an_empty_access_log_says_so(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/")
    await dev_login(page, "citizen", "Ola Tom")
    await page.goto(base + "/#/access-log")
    await page.locator("#access-log-empty").get_by_text("Ingen har sett opplysningene dine").wait_for()
    await screen(page, "access-log-empty")
