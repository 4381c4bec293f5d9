"""A change and the audit entry recording it are appended by one script: no reader ever sees the one without
the other, and a refused change leaves no entry."""

from __future__ import annotations

import asyncio

import pytest

from rooms.audit import SYSTEM, Audit
from rooms.errors import Conflict
from rooms.keys import Keys
from rooms.models import Channel, Outcome, ParticipantState, Priority, Role, TicketState

DOC = Audit("hpr-1", Role.CLINICIAN)


def _actions(entries) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.fields["action"] for e in entries]


async def _join(store, who: str):  # type: ignore[no-untyped-def]
    return await store.queue.join("oslo", "nettlege", owner=who, owner_role=Role.CITIZEN, owner_name="Kari",
                                  channel=Channel.CHAT, reason="utslett", audit=Audit(who, Role.CITIZEN))


async def test_queue_changes_carry_their_entries(store, clock):
    t = await _join(store, "cit-1")
    with pytest.raises(Conflict):
        await _join(store, "cit-1")  # refused: no second entry
    await store.queue.set_priority(t, Priority.RED, audit=Audit("nurse-1", Role.NURSE))
    t2 = await _join(store, "cit-2")
    await store.queue.leave(t2, audit=Audit("cit-2", Role.CITIZEN))
    taken, c = await store.queue.take_next("oslo", "nettlege", clinician="hpr-1", clinician_role=Role.CLINICIAN,
                                           clinician_name="Dr", audit=DOC)
    entries = await store.audit.entries("oslo")
    assert _actions(entries) == ["ticket.joined", "ticket.priority", "ticket.joined", "ticket.left", "ticket.taken"]
    assert entries[0].fields["ticket_id"] == t.id and entries[0].fields["actor"] == "cit-1"
    assert entries[1].fields["priority"] == "red"
    assert entries[4].fields == {**entries[4].fields, "ticket_id": taken.id, "consultation_id": c.id,
                                 "actor": "hpr-1", "role": "clinician"}
    assert _actions(await store.audit.for_consultation("oslo", c.id)) == ["ticket.taken"]
    assert all("Kari" not in str(e.fields) and "utslett" not in str(e.fields) for e in entries)

    t3 = await _join(store, "cit-3")
    await store.queue.disconnected("oslo", t3.id)
    clock.advance(500)
    [gone] = await store.queue.abandon_expired("oslo", 120, audit=SYSTEM)
    assert gone.id == t3.id and (await store.queue.get("oslo", t3.id)).state == TicketState.ABANDONED
    last = (await store.audit.entries("oslo"))[-1].fields
    assert last["action"] == "ticket.abandoned" and last["actor"] == "system" and last["ticket_id"] == t3.id


async def test_consultation_changes_carry_their_entries(store):
    c = await store.consultations.create("oslo", "nettlege", creator="hpr-1", creator_role=Role.CLINICIAN,
                                         creator_name="Dr", audit=True)
    p = await store.consultations.add_participant("oslo", c.id, subject="guest-1", role=Role.INTERPRETER,
                                                  display_name="Tolk", state=ParticipantState.LOBBY, audit=True)
    again = await store.consultations.add_participant("oslo", c.id, subject="guest-1", role=Role.INTERPRETER,
                                                      display_name="Tolk", state=ParticipantState.LOBBY, audit=True)
    assert again.id == p.id  # already there: nothing changed, nothing recorded
    await store.consultations.decide("oslo", c.id, p.id, admit=True, audit=DOC)
    await store.consultations.end("oslo", c.id, Outcome.RESOLVED, audit=DOC)
    with pytest.raises(Conflict):
        await store.consultations.end("oslo", c.id, Outcome.RESOLVED, audit=DOC)
    entries = await store.audit.for_consultation("oslo", c.id)
    assert _actions(entries) == ["consultation.created", "consultation.knocked", "consultation.admitted",
                                 "consultation.ended"]
    assert entries[2].fields["participant_id"] == p.id and entries[3].fields["outcome"] == "resolved"


async def test_no_reader_sees_a_queued_ticket_without_its_entry(store):
    """Readers take atomic snapshots while citizens queue: each ticket in the queue has its entry already."""
    k = Keys("oslo")
    snapshot = store.redis.register_script("""
local queued = redis.call('ZRANGE', KEYS[1], 0, -1)
local recorded = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local f = e[2]
  for i = 1, #f, 2 do if f[i] == 'ticket_id' then recorded[f[i + 1]] = true end end
end
local missing = 0
for _, tid in ipairs(queued) do if not recorded[tid] then missing = missing + 1 end end
return {#queued, missing}
""")
    done = asyncio.Event()
    seen: list[tuple[int, int]] = []

    async def reader() -> None:
        while not done.is_set():
            queued, missing = await snapshot(keys=[k.queue("nettlege"), k.audit()])
            seen.append((queued, missing))
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    await asyncio.gather(*[_join(store, f"cit-{i}") for i in range(40)])
    done.set()
    await task
    assert seen and all(missing == 0 for _, missing in seen)
    assert await snapshot(keys=[k.queue("nettlege"), k.audit()]) == [40, 0]


async def test_invites_carry_their_entries(store):
    c = await store.consultations.create("oslo", "nettlege", creator="hpr-1", creator_role=Role.CLINICIAN,
                                         creator_name="Dr")
    inv = await store.invites.create("oslo", c.id, role=Role.INTERPRETER, ttl_s=600, lobby=True,
                                     created_by="hpr-1", audit=DOC)
    _invite, p = await store.invites.redeem(inv.token, subject="guest-1", display_name="Tolk",
                                            audit_role=Role.INTERPRETER.value)
    entries = await store.audit.for_consultation("oslo", c.id)
    assert _actions(entries) == ["invite.created", "invite.redeemed"]
    assert entries[0].fields["invitee_role"] == "interpreter" and entries[1].fields["participant_id"] == p.id
    assert "Tolk" not in str([e.fields for e in entries])
