"""The answer watchdog lives in `media.Peer`, which knows whether its own offer is outstanding: a server offer the
client never answers is reported once (the signaling socket then closes with 4408: tests/signal), an answered one
is not. Real aiortc peers; time is a test clock, so nothing here waits for a timeout to pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from load_tests.clients import MediaClient
from media import Peer
from tests.media.conftest import connect

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]

TIMEOUT_S = 15.0


@dataclass
class _Timer:
    delay: float
    fire: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Stands in for `loop.call_later`: records the timers; `advance()` runs every one not cancelled."""

    def __init__(self) -> None:
        self.timers: list[_Timer] = []

    def call_later(self, delay: float, fire: Callable[[], None]) -> _Timer:
        timer = _Timer(delay, fire)
        self.timers.append(timer)
        return timer

    def advance(self) -> int:
        due = [t for t in self.timers if not t.cancelled]
        for timer in due:
            timer.cancelled = True
            timer.fire()
        return len(due)


async def _doctor_and_a_publisher(sfu: Any, make_client: Any, clock: Clock, fired: asyncio.Event,
                                  *, answers: bool) -> tuple[MediaClient, Peer]:
    """The doctor (receives only) is in the room with the watchdog on; then the citizen publishes its voice,
    which makes the server offer that track to the doctor."""
    room = sfu.room("c-watchdog")
    doctor = make_client("doctor", video_labels=(), audio=False)
    if not answers:  # a broken client: never sees (so never answers) the server's offers
        deliver = doctor.deliver

        async def drop_offers(message: dict[str, Any]) -> None:
            if message.get("type") != "offer":
                await deliver(message)

        doctor.deliver = drop_offers
    await connect(room, doctor, "clinician", offer=False)
    peer = room.peer("doctor")
    assert peer is not None

    async def unanswered() -> None:
        fired.set()

    peer.watch_answers(TIMEOUT_S, unanswered, call_later=clock.call_later)
    await doctor.offer()
    await doctor.wait_for(lambda: any(m["type"] == "answer" for m in doctor.messages), 20, "the server's answer")
    assert clock.timers == []  # answering the client's offer is not a server offer
    await connect(room, make_client("citizen", video_labels=(), audio=True))
    return doctor, peer


async def test_an_unanswered_server_offer_fires_the_watchdog_once(sfu, make_client) -> None:
    clock, fired = Clock(), asyncio.Event()
    doctor, peer = await _doctor_and_a_publisher(sfu, make_client, clock, fired, answers=False)
    await doctor.wait_for(lambda: peer.offer_outstanding and len(clock.timers) == 1, 20, "a server offer")
    assert clock.timers[0].delay == TIMEOUT_S and not fired.is_set()
    assert clock.advance() == 1
    await asyncio.wait_for(fired.wait(), 10)
    assert peer.offer_outstanding  # still unanswered: what happens now is the signaling session's call
    assert clock.advance() == 0  # reported once per offer


async def test_an_answered_server_offer_does_not_fire_it(sfu, make_client) -> None:
    clock, fired = Clock(), asyncio.Event()
    doctor, peer = await _doctor_and_a_publisher(sfu, make_client, clock, fired, answers=True)
    # The server offered the citizen's voice and the doctor answered it: the watchdog stood down.
    await doctor.wait_for(lambda: doctor.server_offers >= 1 and not peer.offer_outstanding
                          and len(clock.timers) >= 1 and all(t.cancelled for t in clock.timers), 20,
                          "the doctor's answer to the server's offer")
    assert clock.advance() == 0  # no timer left to run, however much time passes
    await asyncio.sleep(0)
    assert not fired.is_set()
    await doctor.wait_for(lambda: len(doctor.tracks_by_kind("audio")) == 1, 20, "the citizen's voice")
