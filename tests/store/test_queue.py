import asyncio
from datetime import date

import pytest

from rooms.errors import Conflict, NotFound
from rooms.models import Channel, ConsultationState, ParticipantState, Priority, Role, TicketState
from rooms.stats import oslo_day


async def _join(store, owner: str, priority: Priority = Priority.GREEN, service: str = "nettlege",
                tenant: str = "demo"):
    return await store.queue.join(tenant, service, owner=owner, owner_role=Role.CITIZEN,
                                  owner_name=f"Navn {owner}", channel=Channel.VIDEO, reason="hoste",
                                  priority=priority)


async def _take(store, who: str = "dr1", service: str = "nettlege", tenant: str = "demo"):
    return await store.queue.take_next(tenant, service, clinician=who, clinician_role=Role.CLINICIAN,
                                       clinician_name="Dr")


async def test_take_next_serves_priority_then_age(store, clock):
    a = await _join(store, "a")
    clock.advance(1)
    b = await _join(store, "b", Priority.YELLOW)
    clock.advance(1)
    c = await _join(store, "c", Priority.RED)
    clock.advance(1)
    d = await _join(store, "d", Priority.RED)
    order = [(await _take(store))[0].id for _ in range(4)]
    assert order == [c.id, d.id, b.id, a.id]
    assert await _take(store) is None


async def test_take_next_opens_consultation_with_ticket_owner_admitted(store):
    t = await _join(store, "citizen-1")
    ticket, consultation = await _take(store, "dr-1")
    assert ticket.id == t.id and ticket.state == TicketState.TAKEN
    assert ticket.consultation_id == consultation.id
    assert consultation.state == ConsultationState.WAITING
    assert consultation.ticket_id == t.id
    roles = {p.subject: (p.role, p.state) for p in consultation.participants}
    assert roles == {"dr-1": (Role.CLINICIAN, ParticipantState.ADMITTED),
                     "citizen-1": (Role.CITIZEN, ParticipantState.ADMITTED)}
    # the owner may queue again once taken
    await _join(store, "citizen-1")


async def test_set_priority_keeps_enqueue_time(store, clock):
    a = await _join(store, "a", Priority.YELLOW)
    clock.advance(5)
    b = await _join(store, "b", Priority.YELLOW)
    clock.advance(5)
    c = await _join(store, "c", Priority.GREEN)
    await store.queue.set_priority(c, Priority.YELLOW)
    await store.queue.set_priority(b, Priority.RED)
    order = [(await _take(store))[0].id for _ in range(3)]
    assert order == [b.id, a.id, c.id]


async def test_one_waiting_ticket_per_owner_and_service(store):
    await _join(store, "a")
    with pytest.raises(Conflict) as err:
        await _join(store, "a")
    assert err.value.code == "already_queued"
    await _join(store, "a", service="legevakt")


async def test_position_and_eta(store, clock):
    tickets = []
    for i in range(3):
        clock.advance(1)
        tickets.append(await _join(store, f"o{i}"))
    places = [await store.queue.place(t, 600) for t in tickets]
    assert [p.position for p in places] == [1, 2, 3]
    assert [p.eta_s for p in places] == [0, 600, 1200]
    # a second clinician working the queue halves the wait
    clock.advance(1)
    await _join(store, "o9")
    await _take(store, "dr1")
    await _take(store, "dr2")
    place = await store.queue.place(tickets[2], 600)
    assert place.position == 1 and place.eta_s == 0


async def test_leave_removes_from_queue_and_cannot_repeat(store):
    t = await _join(store, "a")
    await store.queue.leave(t)
    assert await store.queue.length("demo", "nettlege") == 0
    assert (await store.queue.get("demo", t.id)).state == TicketState.LEFT
    with pytest.raises(Conflict):
        await store.queue.leave(t)
    with pytest.raises(Conflict):
        await store.queue.set_priority(t, Priority.RED)


async def test_reconnect_within_grace_keeps_place_and_after_grace_is_abandoned(store, clock):
    a = await _join(store, "a")
    clock.advance(1)
    b = await _join(store, "b")
    await store.queue.disconnected("demo", a.id)
    clock.advance(100)
    assert await store.queue.abandon_expired("demo", grace_s=120) == []
    await store.queue.reconnected("demo", a.id)
    clock.advance(500)
    assert await store.queue.abandon_expired("demo", grace_s=120) == []
    assert (await store.queue.place(a, 600)).position == 1

    await store.queue.disconnected("demo", a.id)
    clock.advance(121)
    dropped = await store.queue.abandon_expired("demo", grace_s=120)
    assert [t.id for t in dropped] == [a.id]
    assert (await store.queue.get("demo", a.id)).state == TicketState.ABANDONED
    assert (await store.queue.place(b, 600)).position == 1
    day = date.fromisoformat(oslo_day(clock()))
    tickets = (await store.stats.report("demo", ["nettlege"], day, day))["services"][0]["tickets"]
    assert tickets["abandoned"] == 1 and tickets["joined"] == 2


async def test_tenants_are_isolated(store):
    t = await _join(store, "a", tenant="oslo")
    with pytest.raises(NotFound):
        await store.queue.get("bergen", t.id)
    assert await _take(store, tenant="bergen") is None
    assert await store.queue.length("oslo", "nettlege") == 1


async def test_fifty_clinicians_take_fifty_tickets_exactly_once_in_order(store, clock):
    priorities = [Priority.GREEN, Priority.YELLOW, Priority.RED]
    tickets = []
    for i in range(50):
        clock.advance(1)
        tickets.append(await _join(store, f"c{i}", priorities[i % 3]))
    expected = [t.id for t in sorted(tickets, key=lambda t: (t.priority.rank, t.enqueued_at))]

    async def clinician(i: int):
        return await _take(store, f"dr{i}")

    results = await asyncio.gather(*[clinician(i) for i in range(50)])
    taken = [r[0] for r in results if r is not None]
    assert sorted(t.id for t in taken) == sorted(t.id for t in tickets)  # each exactly once
    assert len({r[1].id for r in results}) == 50  # fifty distinct consultations
    assert len({t.taken_by for t in taken}) == 50  # every clinician got one
    # order: the script pops one ticket at a time; taken_seq records the order Redis served them in
    assert [t.id for t in sorted(taken, key=lambda t: t.taken_seq)] == expected
    assert await _take(store) is None
