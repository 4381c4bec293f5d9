"""The operator's link by SMS when an SMS webhook is configured (the embedded default shows it on screen,
see test_consultation.py); the number goes to the webhook and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from .conftest import dev_login, free_port

pytestmark = pytest.mark.browser


@pytest.fixture
async def sms_webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    sent: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        sent.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/sms", receive)
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    yield f"http://127.0.0.1:{port}/sms", sent
    await server.close()


async def test_operator_sends_the_link_by_sms_through_the_webhook(start_app, sms_webhook, pages) -> None:
    url, sent = sms_webhook
    base, _ = await start_app(sms_webhook_url=url)
    operator = await pages.open(base + "/")
    await dev_login(operator, "operator", "Ola Operatør")
    await operator.fill("#op-phone", "+47 912 34 567")
    await operator.click("#create-for-caller")
    await operator.locator("#op-sms-status").get_by_text("SMS-en er sendt").wait_for()
    link = await operator.locator("#op-result input").input_value()
    assert len(sent) == 1
    assert sent[0]["to"] == "+47 912 34 567" and link in sent[0]["text"]
