"""A second doctor invited by link logs in with their own identity and joins (issue 12, finding 2): the link
alone never makes anyone a clinician."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from .conftest import dev_login

pytestmark = pytest.mark.browser


async def test_a_clinician_invite_asks_for_a_login_then_joins_with_it(server, pages) -> None:
    base, _ = server
    async with ClientSession() as http:
        async with http.post(f"{base}/api/v1/dev/token", json={"sub": "hpr-1", "role": "clinician",
                                                               "tenant": "oslo", "name": "Dr. En"}) as r:
            doc = {"Authorization": f"Bearer {(await r.json())['token']}"}
        async with http.post(f"{base}/api/v1/consultations", json={"tenant": "oslo", "service": "legevakt"},
                             headers=doc) as r:
            cid = (await r.json())["id"]
        async with http.post(f"{base}/api/v1/consultations/{cid}/invites", json={"role": "clinician"},
                             headers=doc) as r:
            token = (await r.json())["token"]

        page = await pages.open(f"{base}/#/invite/{token}")
        await dev_login(page, "clinician", "Dr. To")  # the invite page sent us to log in first
        await page.wait_for_function(f"() => location.hash === '#/room/{cid}'")
        async with http.get(f"{base}/api/v1/consultations/{cid}", headers=doc) as r:
            people = (await r.json())["participants"]
        assert [(p["role"], p["display_name"], p["state"]) for p in people] == [
            ("clinician", "Dr. En", "admitted"), ("clinician", "Dr. To", "lobby")]
