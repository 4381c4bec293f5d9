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
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestServer

from rooms.store import connect
from signaling.app import build_app
from tests import netns
from tests.net.chromium import chromium_in

from .conftest import CHROMIUM_ARGS, Pages
from .test_consultation import queue_citizen
from .test_patient_experience import doctor_takes

pytestmark = pytest.mark.browser


@pytest.fixture
def namespace() -> Iterator[netns.Namespace]:
    """Fails (never skips) when namespaces cannot be made, e.g. without root."""
    with netns.namespace() as ns:
        yield ns


@pytest.fixture
async def reachable_server(namespace: netns.Namespace, make_config, redis_url) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """The app bound to the namespace's root-side address (`nettlege serve --host`): both browsers reach it
    there, the patient's over the veth link, the doctor's locally. Grace 6 s, as the browser suite's."""
    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    with socket.socket() as s:
        s.bind((namespace.host_ip, 0))
        port = s.getsockname()[1]
    base = f"http://{namespace.host_ip}:{port}"
    app = build_app(make_config(host=namespace.host_ip, port=port, public_url=base, signal_drop_grace_s=6.0))
    server = TestServer(app, host=namespace.host_ip, port=port)
    await server.start_server()
    yield base
    await server.close()


@pytest.fixture
async def patient_pages(namespace: netns.Namespace, reachable_server: str) -> AsyncIterator[Pages]:
    """Pages of a Chromium whose only network is the namespace's link (fake camera and microphone)."""
    async with chromium_in(namespace, extra_args=[secure(reachable_server)]) as browser:
        p = Pages(browser)
        yield p
        await p.close()
        assert not p.errors, f"JavaScript errors: {p.errors}"


@pytest.fixture
async def doctor_pages(reachable_server: str) -> AsyncIterator[Pages]:
    """The doctor's Chromium, in the root namespace."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                          args=[*CHROMIUM_ARGS, secure(reachable_server)])
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
        namespace: netns.Namespace, reachable_server: str, patient_pages: Pages, doctor_pages: Pages) -> None:
    base = reachable_server
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
