"""Fixtures for the browser suite: the whole app on a loopback port, Debian's Chromium through Playwright
(fake camera and microphone, never a downloaded browser), axe-core from npm, screenshots at phone and
desktop width under test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web import Application

from rooms.store import connect
from signaling.app import build_app

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web_client"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
VENDOR = WEB / "vendor" / "socket.io.esm.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--no-first-run", "--disable-quic",
]


def _ensure_built() -> str | None:
    """The vendored socket.io module and axe-core come from npm (`make install` builds them)."""
    if VENDOR.exists() and AXE.exists():
        return None
    if not shutil.which("npm"):
        return "npm is needed to build web_client (socket.io-client, axe-core)"
    try:
        if not (WEB / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True,
                           timeout=300, capture_output=True)
        subprocess.run(["npm", "run", "--silent", "build"], cwd=WEB, check=True, timeout=120, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"could not build web_client: {exc}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [i for i in items if Path(str(i.fspath)).is_relative_to(here)]
    if not mine:
        return
    reason = None
    if not shutil.which("chromium"):
        reason = "Debian chromium is not installed (make system-deps)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright (Python) is not installed"
    reason = reason or _ensure_built()
    for item in mine:
        item.add_marker(pytest.mark.browser)
        if reason and "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def has_route(app: Application, canonical: str) -> bool:
    return any(getattr(r, "canonical", None) == canonical for r in app.router.resources())


@pytest.fixture
async def start_app(make_config, redis_url) -> AsyncIterator[Callable[..., Awaitable[tuple[str, Application]]]]:  # type: ignore[no-untyped-def]
    """Start the app on a fixed free loopback port (so the WebSocket and Socket.IO origin checks, which
    allow the server's own origin, accept the browser). Config overrides as keywords."""
    servers: list[TestServer] = []

    async def start(**overrides: Any) -> tuple[str, Application]:
        r = connect(redis_url)
        await r.flushdb()
        await r.aclose()
        port = free_port()
        app = build_app(make_config(port=port, **overrides))
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{port}", app

    start.servers = servers  # type: ignore[attr-defined]  # a test may stop one (node failover)
    yield start
    for server in servers:
        await server.close()


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


@pytest.fixture
async def server(start_app) -> tuple[str, Application]:  # type: ignore[no-untyped-def]
    return await start_app()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        yield b
        await b.close()


class Pages:
    """Opens browser contexts (one per person) and collects page errors to fail the test on."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.errors: list[str] = []
        self.contexts: list[Any] = []

    async def open(self, url: str, *, phone: bool = False, bypass_csp: bool = True, locale: str = "nb-NO") -> Any:
        ctx = await self.browser.new_context(viewport=PHONE if phone else DESKTOP, bypass_csp=bypass_csp,
                                             locale=locale, permissions=["camera", "microphone"])
        self.contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda e: self.errors.append(f"{url}: {e}"))
        await page.goto(url)
        return page

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


@pytest.fixture
async def pages(browser) -> AsyncIterator[Pages]:  # type: ignore[no-untyped-def]
    p = Pages(browser)
    yield p
    await p.close()
    assert not p.errors, f"JavaScript errors: {p.errors}"


async def shoot(page: Any, name: str) -> None:
    """Screenshots of the current screen at phone and at desktop width (the page's own size is restored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.wait_for_timeout(150)
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(before)


async def check_a11y(page: Any, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violations."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || ''))}));
    }""")
    assert not result, f"axe on {name}: " + "\n".join(f"{v['impact']} {v['id']}: {v['help']} {v['nodes']}"
                                                        for v in result)


async def screen(page: Any, name: str) -> None:
    """Every screen a test reaches: axe, then screenshots."""
    await check_a11y(page, name)
    await shoot(page, name)


async def dev_login(page: Any, role: str, name: str, tenant: str = "oslo") -> None:
    try:
        await page.wait_for_selector("#dev-name")
    except Exception as e:  # say what the page shows instead of the login form
        # what the page shows, and which of its files had arrived (the app's module graph may be stuck on one)
        shown = await page.evaluate("""() => [location.href, document.readyState, document.body.innerText.slice(0, 300),
            performance.getEntriesByType('resource').map(r => `${r.name.split('/').pop()} ${r.duration | 0}`)]""")
        raise AssertionError(f"no login form: {shown}") from e
    await page.fill("#dev-name", name)
    await page.select_option("#dev-role", role)
    await page.select_option("#dev-tenant", tenant)
    await page.click("#main form button[type=submit]")
    await page.wait_for_function("() => !location.hash.startsWith('#/login')")


async def session_token(page: Any) -> str:
    return await page.evaluate("() => JSON.parse(sessionStorage.getItem('nettlege.session')).token")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


ENV_CI = os.environ.get("CI") == "true"
