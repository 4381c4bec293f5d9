"""A patient's network really goes (issue 13, item 2): the patient's Chromium lives in a network namespace
(tests/netns.py) and its link is taken down, so nothing at all gets through, as in a tunnel or when a phone
leaves Wi-Fi. The doctor's page, in the root namespace, shows the drop within 3 s and the patient back when the
link returns within the grace period.

Why not Playwright's `set_offline`: Chromium's offline emulation only holds the page's own HTTP and WebSocket
data frames. The browser's network stack still answers the server's WebSocket pings below the emulation, and
WebRTC's UDP is not emulated at all, so to the server such a page is alive; it is not a network drop.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from tests import netns
from tests.browser.conftest import CHROMIUM_ARGS, Pages
from tests.browser.test_consultation import queue_citizen
from tests.browser.test_patient_experience import doctor_takes
from tests.net.chromium import chromium_in

# the browser suite's grace period: the patient's link comes back well within it
pytestmark = [pytest.mark.browser, pytest.mark.app_config(signal_drop_grace_s=6.0)]


@pytest.fixture
def served_url(served: TestClient) -> str:
    """`served` (tests/net/conftest.py): the app on the namespace's root-side address; both browsers reach it
    there, the patient's over the veth link, the doctor's locally."""
    return str(served.make_url("")).rstrip("/")


@pytest.fixture
async def patient_pages(namespace: netns.Namespace, served_url: str) -> AsyncIterator[Pages]:
    """Pages of a Chromium whose only network is the namespace's link (fake camera and microphone)."""
    async with chromium_in(namespace, extra_args=[secure(served_url)]) as browser:
        p = Pages(browser)
        yield p
        await p.close()
        assert not p.errors, f"JavaScript errors: {p.errors}"


@pytest.fixture
async def doctor_pages(served_url: str) -> AsyncIterator[Pages]:
    """The doctor's Chromium, in the root namespace."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                          args=[*CHROMIUM_ARGS, secure(served_url)])
        pages = Pages(browser)
        yield pages
        await pages.close()
        await browser.close()
        assert not pages.errors, f"JavaScript errors: {pages.errors}"


def secure(origin: str) -> str:
    """Camera and microphone need a secure context; a deployment has TLS, this test's server plain HTTP on a
    TEST-NET address, so the browsers are told to treat that one origin as secure."""
    return f"--unsafely-treat-insecure-origin-as-secure={origin}"


async def test_a_real_network_drop_shows_within_3_s_and_clears_when_the_patient_is_back(
        namespace: netns.Namespace, served_url: str, patient_pages: Pages, doctor_pages: Pages) -> None:
    base = served_url
    citizen = await queue_citizen(patient_pages, base, "Nett Brudd")
    doctor = await doctor_takes(doctor_pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    row = doctor.locator("#participants li", has_text="Nett Brudd")
    await row.locator(".presence-connected").wait_for(timeout=10_000)

    namespace.set_link(False)
    await row.get_by_text("Mistet forbindelsen").wait_for(timeout=3_000)
    namespace.set_link(True)
    # back within the grace period (6 s): connected again, and nobody "left"
    await row.locator(".presence-connected").wait_for(timeout=20_000)
    assert await doctor.locator("#presence-notice").inner_text() == ""
