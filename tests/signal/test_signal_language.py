"""Signaling errors follow the `lang` of hello (nb by default, nn, en); the code never changes."""

from __future__ import annotations

import aiohttp

from tests.conftest import dev_token
from tests.signal.conftest import take_consultation


async def test_error_messages_in_the_language_of_hello(live):
    cid, _ct, _dt = await take_consultation(live)
    base = str(live.make_url("/")).rstrip("/").replace("http", "ws")
    url = f"{base}/api/v1/consultations/{cid}/signal"
    own = {"Origin": str(live.make_url("/")).rstrip("/")}
    bergen = await dev_token(live, "d-bergen", "clinician", tenant="bergen")  # not this tenant's consultation
    seen = {}
    async with aiohttp.ClientSession() as http:
        for lang in (None, "nn", "en", "xx"):
            async with http.ws_connect(url, headers=own) as ws:
                hello = {"type": "hello", "token": bergen, **({"lang": lang} if lang else {})}
                await ws.send_json(hello)
                msg = await ws.receive_json()
                assert msg["code"] == "consultation_not_found"
                seen[lang] = msg["message"]
    assert seen[None] == seen["xx"] == "Fant ikke denne konsultasjonen."
    assert seen["nn"] == "Fann ikkje denne konsultasjonen."
    assert seen["en"] == "This consultation was not found."
