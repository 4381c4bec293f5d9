"""The PDF export renders off the event loop (other requests are served meanwhile) and only up to a size cap."""

from __future__ import annotations

import asyncio
import threading

from chat import transcript
from chat.limits import ChatLimits
from chat.messages import MessageStore, Sender
from signaling.appkeys import STORE
from signaling.chat_wiring import CHAT
from tests.chat.conftest import consultation
from tests.conftest import bearer


async def _fill(app, cid: str, n: int) -> None:
    """n messages written through the message store, without the per-participant rate limit."""
    chat = app[CHAT]
    store = MessageStore(app[STORE].redis, chat.keys, ChatLimits(messages_per_window=10**9))
    sender = Sender("p_x", "citizen", "Kari Nordmann")
    for i in range(n):
        await store.append("oslo", cid, sender, f"c{i}", f"Melding nummer {i}: " + "hodepine og feber " * 8)


async def test_the_loop_keeps_serving_while_a_pdf_renders(chat_app, monkeypatch):
    pair = await consultation(chat_app)
    await _fill(chat_app.server.app, pair.cid, 300)
    rendering, release = threading.Event(), threading.Event()
    real = transcript.as_pdf

    def held_render(t):  # type: ignore[no-untyped-def]
        """The real render, held open until the test has been served while it runs (or 20 s passed)."""
        rendering.set()
        try:
            return real(t)
        finally:
            release.wait(20)
            rendering.clear()

    monkeypatch.setattr(transcript, "as_pdf", held_render)
    export = asyncio.ensure_future(chat_app.get(f"/api/v1/consultations/{pair.cid}/transcript?format=pdf",
                                                headers=bearer(pair.doctor)))
    while not rendering.is_set():
        assert not export.done(), await export.result().text()
        await asyncio.sleep(0.01)
    served_during_render = 0
    for _ in range(3):  # had the render run on the event loop, none of these could be answered before it ends
        r = await asyncio.wait_for(chat_app.get("/healthz"), 30)
        assert r.status == 200
        served_during_render += rendering.is_set()
    release.set()
    r = await export
    assert served_during_render == 3
    assert r.status == 200 and (await r.read()).startswith(b"%PDF")


async def test_a_pdf_beyond_the_size_cap_is_refused_with_413_and_text_still_works(chat_app, monkeypatch):
    pair = await consultation(chat_app)
    await _fill(chat_app.server.app, pair.cid, 12)
    monkeypatch.setattr(transcript, "PDF_MAX_MESSAGES", 10)
    base = f"/api/v1/consultations/{pair.cid}/transcript"
    r = await chat_app.get(base + "?format=pdf", headers=bearer(pair.doctor))
    body = await r.json()
    assert r.status == 413 and body["error"] == "transcript_too_large" and "format=text" in body["message"]
    r = await chat_app.get(base + "?format=text", headers=bearer(pair.doctor))
    assert r.status == 200 and "Melding nummer 11" in await r.text()
