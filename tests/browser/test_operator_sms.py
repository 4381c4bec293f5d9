"""The operator's link by SMS when an SMS webhook is configured (the embedded default shows it on screen,
see test_consultation.py); the number goes to the webhook and nowhere else."""

from __future__ import annotations

import pytest

from .conftest import dev_login

pytestmark = pytest.mark.browser


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
