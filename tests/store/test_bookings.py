"""Booked consultations: slot, host and citizen admitted, move, cancel, and the no-show sweep (once)."""

import asyncio
from datetime import date, datetime

import pytest

from rooms.errors import Conflict, NotFound
from rooms.models import ConsultationState, Outcome, ParticipantState, Role
from rooms.stats import oslo_day
from rooms.store import Store
from rooms.tenants import OSLO

T = "oslo"
NO_SHOW_S = 600


def at(d: int, hh: int, mm: int = 0) -> float:
    return datetime(2026, 3, d, hh, mm, tzinfo=OSLO).timestamp()


async def _book(store, slot_at: float, host: str = "dr-a", citizen: str = "kari"):
    return await store.bookings.create(T, "nettlege", booker="booksys", host=host, host_name="Dr A",
                                       citizen=citizen, citizen_name="Kari", slot_at=slot_at,
                                       no_show_after_s=NO_SHOW_S)


async def test_a_booking_is_a_scheduled_consultation_with_host_and_citizen_admitted(store, clock):
    clock.now = at(9, 12)
    b, c = await _book(store, at(10, 9))
    assert c.state == ConsultationState.SCHEDULED and c.scheduled_at == at(10, 9)
    assert {(p.subject, p.role, p.state) for p in c.participants} == {
        ("dr-a", Role.CLINICIAN, ParticipantState.ADMITTED), ("kari", Role.CITIZEN, ParticipantState.ADMITTED)}
    assert b.booker == "booksys" and b.host == "dr-a" and b.state == "booked"
    # the host's list for the slot's day (not the booking's day)
    assert [x.id for x in await store.bookings.of_host(T, "dr-a", "2026-03-10")] == [c.id]
    assert await store.bookings.of_host(T, "dr-a", "2026-03-09") == []
    assert await store.bookings.of_host(T, "dr-b", "2026-03-10") == []
    report = await store.stats.report(T, ["nettlege"], date(2026, 3, 9), date(2026, 3, 9))
    assert report["services"][0]["bookings"] == {"created": 1, "cancelled": 0, "rescheduled": 0}


async def test_reschedule_moves_the_slot_and_the_day_list(store, clock):
    clock.now = at(9, 12)
    b, c = await _book(store, at(10, 9))
    b = await store.bookings.reschedule(b, at(11, 14), NO_SHOW_S)
    assert b.slot_at == at(11, 14)
    assert (await store.consultations.get(T, c.id)).scheduled_at == at(11, 14)
    assert await store.bookings.of_host(T, "dr-a", "2026-03-10") == []
    assert [x.id for x in await store.bookings.of_host(T, "dr-a", "2026-03-11")] == [c.id]
    # the old slot's no-show time no longer applies
    clock.now = at(10, 12)
    assert await store.bookings.end_no_shows(T) == []


async def test_cancel_ends_without_outcome_and_is_never_a_no_show(store, clock):
    clock.now = at(9, 12)
    b, c = await _book(store, at(10, 9))
    await store.bookings.cancel(b)
    got = await store.consultations.get(T, c.id)
    assert got.state == ConsultationState.ENDED and got.outcome is None
    assert (await store.bookings.get(T, c.id)).state == "cancelled"
    with pytest.raises(Conflict) as err:
        await store.bookings.cancel(await store.bookings.get(T, c.id))
    assert err.value.code == "booking_started"
    clock.now = at(11, 0)
    assert await store.bookings.end_no_shows(T) == []
    report = await store.stats.report(T, ["nettlege"], date(2026, 3, 9), date(2026, 3, 9))
    assert report["services"][0]["bookings"]["cancelled"] == 1
    assert report["services"][0]["consultations"]["ended"] == 0  # a cancelled slot is not an ended consultation


async def test_a_started_booking_cannot_be_moved_or_cancelled(store, clock):
    clock.now = at(10, 8, 50)
    b, c = await _book(store, at(10, 9))
    await store.consultations.activate(T, c.id)
    for change in (store.bookings.cancel(b), store.bookings.reschedule(b, at(11, 9), NO_SHOW_S)):
        with pytest.raises(Conflict):
            await change
    with pytest.raises(NotFound):
        await store.bookings.get(T, "c_unknown")


async def test_unattended_slot_ends_as_no_show_exactly_once_across_processes(store, clock, redis_client):
    clock.now = at(10, 8)
    _, unattended = await _book(store, at(10, 9), citizen="a")
    _, attended = await _book(store, at(10, 9), citizen="b")
    _, later = await _book(store, at(10, 11), citizen="c")
    await store.consultations.open(T, unattended.id)  # the clinician came; the citizen never did
    await store.consultations.activate(T, attended.id)
    clock.now = at(10, 9) + NO_SHOW_S - 1
    assert await store.bookings.end_no_shows(T) == []
    clock.now = at(10, 9) + NO_SHOW_S
    # eight "processes" sweeping at once, each with its own Store over the same Redis
    others = [Store(redis_client, clock) for _ in range(8)]
    results = await asyncio.gather(*[s.bookings.end_no_shows(T) for s in others])
    assert sorted(cid for r in results for cid in r) == [unattended.id]
    got = await store.consultations.get(T, unattended.id)
    assert got.state == ConsultationState.ENDED and got.outcome == Outcome.NO_SHOW
    assert (await store.consultations.get(T, attended.id)).state == ConsultationState.ACTIVE
    assert (await store.consultations.get(T, later.id)).state == ConsultationState.SCHEDULED
    report = await store.stats.report(T, ["nettlege"], date(2026, 3, 10), date(2026, 3, 10))
    assert report["services"][0]["consultations"]["outcomes"]["no-show"] == 1
    assert report["services"][0]["consultations"]["ended"] == 1
    assert oslo_day(clock()) == "2026-03-10"
