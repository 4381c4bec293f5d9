"""Two server processes' worth of nodes sharing Redis, in the browser: pages are served by node A while the
consultation's media lives on node B (the client follows `signal_url`); then B goes away and both
browsers come back with video on A."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling.placement import NODE
from signaling.signal_ws import SIGNAL_SESSIONS

from .conftest import dev_login
from .media_checks import frames_decoded, wait_for_more_frames, wait_for_video
from .test_consultation import queue_citizen

pytestmark = pytest.mark.browser


@pytest.mark.timeout(240)  # the failover waits below may take a minute each on a busy machine
async def test_media_on_another_node_and_failover_back(start_app, pages) -> None:
    # 4.5 s, not less: both nodes heartbeat from this one busy test process (every 1.5 s), and a loop held up
    # past the timeout by two rendering browsers would declare the surviving node A dead as well.
    base_a, app_a = await start_app(node_timeout_s=4.5)
    _, app_b = await start_app(node_timeout_s=4.5, allowed_origins=[base_a])
    # A reports itself busy, so the placement puts the new consultation's media on B.
    node_a, node_b = app_a[NODE], app_b[NODE]
    node_a.load = lambda: 50.0
    await node_a.registry.heartbeat(node_a.id, node_a.address, 50.0)
    await node_b.registry.heartbeat(node_b.id, node_b.address, 0.0)

    citizen = await queue_citizen(pages, base_a, "Kari Pasient")
    doctor = await pages.open(base_a + "/")
    console: dict[object, list[str]] = {citizen: [], doctor: []}  # shown if the failover does not happen
    frames: dict[object, list[str]] = {citizen: [], doctor: []}  # the signaling messages' types, both ways
    for page in (citizen, doctor):
        page.on("console", lambda m, page=page: console[page].append(f"{m.type}: {m.text}"))

        def on_ws(ws: Any, page: Any = page) -> None:
            if not ws.url.endswith("/signal"):
                return
            frames[page].append(f"open {ws.url}")
            ws.on("framereceived", lambda f, page=page: frames[page].append(f"< {message_type(f)}"))
            ws.on("framesent", lambda f, page=page: frames[page].append(f"> {message_type(f)}"))
            ws.on("close", lambda _w, page=page: frames[page].append("closed"))

        page.on("websocket", on_ws)
    await dev_login(doctor, "clinician", "Dr. Lege")
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await doctor.click("#take-next")
    await citizen.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=15_000)
    await wait_for_video(doctor)
    await wait_for_video(citizen)
    assert len(app_b[SIGNAL_SESSIONS]) == 2 and len(app_a[SIGNAL_SESSIONS]) == 0  # media on B, pages from A

    # B stops; its heartbeat goes, A takes the consultation over, and both browsers reconnect there.
    await next(s for s in start_app.servers if s.app is app_b).close()
    node_a.load = lambda: 0.0
    for page in (doctor, citizen):
        before = await frames_decoded(page)
        # generous: B's death is seen after up to 4.5 s, then the page's reconnect backoff (0.5 s doubling)
        try:
            await page.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=60_000)
        except Exception as e:
            state = await page.evaluate("""() => ({status: document.querySelector('#room-status')?.textContent,
                call: window.nettlegeCall && {state: window.nettlegeCall.state, ws: window.nettlegeCall.ws?.readyState,
                url: window.nettlegeCall.ws?.url,
                backoff: window.nettlegeCall.backoff, pc: window.nettlegeCall.pc?.connectionState}})""")
            raise AssertionError(f"no reconnect to A: {state}; console: {console[page]}; A at {base_a}; "
                                 f"frames: {frames[page]}") from e
        await wait_for_more_frames(page, before, timeout_ms=60_000)
    assert len(app_a[SIGNAL_SESSIONS]) == 2


def message_type(frame: Any) -> str:
    try:
        return str(json.loads(frame).get("type"))
    except (TypeError, ValueError, AttributeError):
        return "?"
