"""take-next declares every key its script touches (Redis Cluster): it declares the queue's head as the previous
take left it, and a ticket that joined the head since makes the script change nothing and answer the head as it
is now, which the second call declares -- never a wrong take, and one round trip while the head is unchanged."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from rooms.models import Channel, Priority, Role


async def _join(store, owner: str, priority: Priority = Priority.GREEN):  # type: ignore[no-untyped-def]
    return await store.queue.join("oslo", "nettlege", owner=owner, owner_role=Role.CITIZEN, owner_name=owner,
                                  channel=Channel.CHAT, reason="r", priority=priority)


async def _take(store):  # type: ignore[no-untyped-def]
    return await store.queue.take_next("oslo", "nettlege", clinician="dr", clinician_role=Role.CLINICIAN,
                                       clinician_name="Dr")


@contextlib.contextmanager
def _counting_take_calls(store):  # type: ignore[no-untyped-def]
    """Yields a list that gets, per call of the take-next script, how many keys it declared."""
    script = store.queue._take
    calls: list[int] = []

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(kwargs["keys"]))
        return await script(*args, **kwargs)

    store.queue._take = counted
    try:
        yield calls
    finally:
        store.queue._take = script


async def test_a_ticket_that_jumps_the_head_meanwhile_is_taken_after_a_second_call(store, clock):  # type: ignore[no-untyped-def]
    first = await _join(store, "forst")
    clock.advance(1)
    green = await _join(store, "gronn")
    with _counting_take_calls(store) as calls:
        taken, _ = await _take(store)  # nothing known yet: a first call learns the head, a second takes
        assert taken.id == first.id and len(calls) == 2
        calls.clear()
        clock.advance(1)
        urgent = await _join(store, "rod", Priority.RED)  # joins the head after the last take saw it
        ticket, consultation = await _take(store)
        assert len(calls) == 2 and calls[1] > calls[0]  # refused with the stale head; the second declared both
        calls.clear()
        assert ticket.id == urgent.id  # so the most urgent came first
        second, _ = await _take(store)
        assert second.id == green.id and len(calls) == 1  # the head the last take answered: one call
    assert {p.subject for p in consultation.participants} == {"dr", "rod"}
    stored = await store.consultations.get("oslo", consultation.id)  # what the script's answer was built into
    assert replace(consultation, participants=[]) == replace(stored, participants=[])
    assert sorted(consultation.participants, key=str) == sorted(stored.participants, key=str)
    assert "c_" in consultation.id and await store.consultations.of_subject("oslo", "rod") == [consultation.id]
    assert consultation.id in await store.consultations.of_subject("oslo", "dr")
    assert await store.queue.open_ticket_of("oslo", "rod", "nettlege") is None
    assert await store.queue.get("oslo", ticket.id) == ticket
    assert await _take(store) is None


async def test_a_ticket_queued_without_an_owner_entry_is_still_taken(store):  # type: ignore[no-untyped-def]
    """Tickets queued by the version before the owners hash have no entry there: their owner is read instead."""
    from rooms.keys import Keys

    t = await _join(store, "gammel")
    await store.redis.hdel(Keys("oslo").queue_owners("nettlege"), t.id)
    ticket, consultation = await _take(store)
    assert ticket.id == t.id and consultation.participant_for("gammel") is not None
    assert await store.consultations.of_subject("oslo", "gammel") == [consultation.id]


async def test_owners_gone_at_the_head_cost_one_call_once_a_walk_past_them_was_seen(store, clock):  # type: ignore[no-untyped-def]
    """A take declares only the head tickets its walk can reach: as far as the last walk went (past tickets whose
    owners are gone) and a spare few, so a head of absent owners does not make every take a second call."""
    from rooms.queue import OFFLINE_AFTER_S

    tickets = []
    for owner in [*(f"borte{i}" for i in range(5)), *(f"her{i}" for i in range(3))]:
        tickets.append(await _join(store, owner))
        clock.advance(1)  # each in its own millisecond: queue order is join order
    gone, here = tickets[:5], tickets[5:]
    for t in gone:
        await store.queue.disconnected("oslo", t.id)
    clock.advance(OFFLINE_AFTER_S + 1)
    with _counting_take_calls(store) as calls:
        first, _ = await _take(store)
        assert first.id == here[0].id and len(calls) == 2  # nothing known yet: learn the head, then take
        calls.clear()
        second, _ = await _take(store)
        assert second.id == here[1].id and len(calls) == 1  # the five gone owners' tickets were declared too
    assert [t.id for t in await store.queue.waiting("oslo", "nettlege")] == [*(t.id for t in gone), here[2].id]
