"""Take-next and the owner's presence: within one priority a present citizen goes before one whose page has
been gone longer than OFFLINE_AFTER_S; a brief drop keeps the place; if everyone of the first priority is
gone, the oldest is taken all the same and `owner_offline_s` says for how long. Never across priorities."""

import pytest

from rooms.errors import Conflict
from rooms.models import Channel, Priority, Role
from rooms.queue import OFFLINE_AFTER_S


async def _join(store, owner: str, priority: Priority = Priority.GREEN):
    return await store.queue.join("demo", "nettlege", owner=owner, owner_role=Role.CITIZEN, owner_name=owner,
                                  channel=Channel.VIDEO, reason="hoste", priority=priority)


async def _take(store):
    taken = await store.queue.take_next("demo", "nettlege", clinician="dr", clinician_role=Role.CLINICIAN,
                                        clinician_name="Dr")
    return taken[0] if taken else None


async def test_present_citizen_goes_before_one_long_gone_in_the_same_priority(store, clock):
    gone = await _join(store, "gone")
    clock.advance(1)
    here = await _join(store, "here")
    await store.queue.disconnected("demo", gone.id)
    clock.advance(OFFLINE_AFTER_S + 1)
    first = await _take(store)
    assert first.id == here.id and first.owner_offline_s is None
    # Only the gone one is left: taken, and the answer says how long its owner has been away.
    second = await _take(store)
    assert second.id == gone.id
    assert abs(second.owner_offline_s - (OFFLINE_AFTER_S + 1)) < 0.01


async def test_a_brief_drop_keeps_the_place(store, clock):
    blip = await _join(store, "blip")
    clock.advance(1)
    await _join(store, "other")
    await store.queue.disconnected("demo", blip.id)
    clock.advance(OFFLINE_AFTER_S - 1)
    taken = await _take(store)
    assert taken.id == blip.id and abs(taken.owner_offline_s - (OFFLINE_AFTER_S - 1)) < 0.01


async def test_back_online_is_present_again(store, clock):
    a = await _join(store, "a")
    clock.advance(1)
    await _join(store, "b")
    await store.queue.disconnected("demo", a.id)
    clock.advance(OFFLINE_AFTER_S * 3)
    await store.queue.reconnected("demo", a.id)
    taken = await _take(store)
    assert taken.id == a.id and taken.owner_offline_s is None


async def test_presence_never_jumps_a_more_urgent_ticket(store, clock):
    red = await _join(store, "red", Priority.RED)
    clock.advance(1)
    green = await _join(store, "green")
    await store.queue.disconnected("demo", red.id)
    clock.advance(OFFLINE_AFTER_S * 3)
    taken = await _take(store)
    assert taken.id == red.id and taken.owner_offline_s >= OFFLINE_AFTER_S * 3
    assert (await _take(store)).id == green.id
    assert await _take(store) is None


async def test_a_citizen_waits_in_one_queue_at_a_time(store):
    services = ["nettlege", "legevakt"]
    first = await store.queue.join("demo", "nettlege", owner="kari", owner_role=Role.CITIZEN, owner_name="Kari",
                                   channel=Channel.CHAT, reason="hoste", exclusive_of=services)
    with pytest.raises(Conflict) as refused:
        await store.queue.join("demo", "legevakt", owner="kari", owner_role=Role.CITIZEN, owner_name="Kari",
                               channel=Channel.CHAT, reason="hoste", exclusive_of=services)
    assert refused.value.code == "already_queued"
    assert await store.queue.length("demo", "legevakt") == 0
    # Without the rule (a nurse for another patient) a second service is fine; after leaving, so is Kari.
    await store.queue.join("demo", "legevakt", owner="siri", owner_role=Role.NURSE, owner_name="Siri",
                           channel=Channel.VIDEO, reason="pasient 2")
    await store.queue.leave(first)
    again = await store.queue.join("demo", "legevakt", owner="kari", owner_role=Role.CITIZEN, owner_name="Kari",
                                   channel=Channel.CHAT, reason="hoste", exclusive_of=services)
    assert again.service == "legevakt"
