"""take-next declares every key its script touches (Redis Cluster): it reads the queue's head first, and a
ticket that joins the head between that read and the script makes it read again -- never a wrong take."""

from __future__ import annotations

from rooms.models import Channel, Priority, Role


async def _join(store, owner: str, priority: Priority = Priority.GREEN):  # type: ignore[no-untyped-def]
    return await store.queue.join("oslo", "nettlege", owner=owner, owner_role=Role.CITIZEN, owner_name=owner,
                                  channel=Channel.CHAT, reason="r", priority=priority)


async def test_a_ticket_that_jumps_the_head_meanwhile_is_taken_after_a_reread(store, clock):  # type: ignore[no-untyped-def]
    green = await _join(store, "gronn")
    clock.advance(1)
    redis = store.queue._r
    original = redis.zrange
    urgent, reads = [], []

    async def zrange_then_red_arrives(*args, **kwargs):  # type: ignore[no-untyped-def]
        head = await original(*args, **kwargs)
        reads.append(head)
        if not urgent:  # after the first read only: a red ticket arrives before the script runs
            urgent.append(await _join(store, "rod", Priority.RED))
        return head

    redis.zrange = zrange_then_red_arrives
    try:
        ticket, consultation = await store.queue.take_next("oslo", "nettlege", clinician="dr",
                                                           clinician_role=Role.CLINICIAN, clinician_name="Dr")
    finally:
        del redis.zrange
    assert [len(h) for h in reads] == [1, 2]  # the script refused the stale head; the second read saw both
    assert ticket.id == urgent[0].id  # so the most urgent came first
    assert {p.subject for p in consultation.participants} == {"dr", "rod"}
    assert "c_" in consultation.id and await store.consultations.of_subject("oslo", "rod") == [consultation.id]
    assert await store.consultations.of_subject("oslo", "dr") == [consultation.id]
    assert await store.queue.open_ticket_of("oslo", "rod", "nettlege") is None
    second, _ = await store.queue.take_next("oslo", "nettlege", clinician="dr", clinician_role=Role.CLINICIAN,
                                            clinician_name="Dr")
    assert second.id == green.id
    assert await store.queue.take_next("oslo", "nettlege", clinician="dr", clinician_role=Role.CLINICIAN,
                                       clinician_name="Dr") is None
