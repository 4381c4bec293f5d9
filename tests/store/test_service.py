"""The use cases (rooms/service.py, `store.rooms`): each makes its change, its audit entry and its event
together. Real Redis and the embedded store; the events are heard through a real EventHub on the same store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rooms.errors import Conflict, Forbidden, RateLimited, ServiceClosed
from rooms.events import (
    ConsultationChanged,
    ConsultationEnded,
    Event,
    EventHub,
    Knocked,
    ParticipantDecided,
    QueueChanged,
    Resync,
    SettingsChanged,
    TicketCalled,
    consultation_topic,
    queue_topic,
    settings_topic,
    ticket_topic,
)
from rooms.models import Channel, Outcome, ParticipantState, Principal, Priority, Role, TicketState
from rooms.service_settings import SettingsStore
from rooms.tenants import OpeningHours, Service, Tenant

T = "oslo"
NETTLEGE = Service(id="nettlege", name="Kommunal nettlege", opening_hours=OpeningHours(default="24/7"),
                   median_consultation_s=300)
LEGEVAKT = Service(id="legevakt", name="Legevakt", opening_hours=OpeningHours(default="24/7"))
OSLO = Tenant(id=T, name="Oslo kommune", services=(NETTLEGE, LEGEVAKT))
KARI = Principal("kari", Role.CITIZEN, T, "Kari Nordmann")
DR = Principal("dr", Role.CLINICIAN, T, "Dr Lege")


class Heard:
    """Every event of some topics, as this process's hub hands them over."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.events: list[Event | Resync] = []
        self._arrived = asyncio.Event()

    def topic(self, topic: str) -> None:
        self.hub.add(T, topic, self._heard)

    def _heard(self, event: Event | Resync) -> None:
        self.events.append(event)
        self._arrived.set()

    async def until(self, *expected: Event, within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s):
            while not all(e in self.events for e in expected):
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def heard(store) -> AsyncIterator[Heard]:  # type: ignore[no-untyped-def]
    hub = EventHub(store.redis)
    await hub.start()
    assert hub.subscribed.is_set()
    yield Heard(hub)
    await hub.stop()


async def _actions(store, cid: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    entries = await (store.audit.for_consultation(T, cid) if cid else store.audit.entries(T))
    return [e.fields["action"] for e in entries]


async def test_join_queue_tells_the_place_audits_and_announces_in_one_go(store, heard, clock):  # type: ignore[no-untyped-def]
    heard.topic(queue_topic("nettlege"))
    first = await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")
    clock.advance(1)
    ola = Principal("ola", Role.CITIZEN, T, "Ola")
    second = await store.rooms.join_queue(ola, OSLO, NETTLEGE, channel=Channel.CHAT, reason="feber")
    assert (first.place.position, first.place.eta_s) == (1, 0)
    assert (second.place.position, second.place.eta_s) == (2, 300)  # one ahead, the service's median, 1 clinician
    assert second.place == await store.queue.place(second.ticket, 300)
    assert await _actions(store) == ["ticket.joined", "ticket.joined"]
    await heard.until(QueueChanged("nettlege"))
    with pytest.raises(Conflict):  # a citizen waits in one queue of the tenant at a time
        await store.rooms.join_queue(KARI, OSLO, LEGEVAKT, channel=Channel.VIDEO, reason="igjen")
    nurse = Principal("sykepleier", Role.NURSE, T, "Sykepleier")
    await store.rooms.join_queue(nurse, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="pasient 1")
    await store.rooms.join_queue(nurse, OSLO, LEGEVAKT, channel=Channel.VIDEO, reason="pasient 2",
                                 priority=Priority.RED)  # a nurse asks for doctors for several patients


async def test_a_closed_service_queues_nothing_and_says_when_it_opens(store):  # type: ignore[no-untyped-def]
    closed = Service(id="nettlege", name="Kommunal nettlege", opening_hours=OpeningHours(default="closed"))
    with pytest.raises(ServiceClosed) as err:
        await store.rooms.join_queue(KARI, OSLO, closed, channel=Channel.VIDEO, reason="hoste")
    assert "116117" in err.value.message
    assert await store.queue.length(T, "nettlege") == 0 and await _actions(store) == []


async def test_runtime_closures_apply_and_a_change_reaches_other_processes(store, heard, clock):  # type: ignore[no-untyped-def]
    """The runtime settings are cached per process: the changing process drops its copy at once, another one
    when the SettingsChanged event reaches its hub."""
    other = SettingsStore(store.redis)  # another process's copy
    unfollow = other.follow(heard.hub, [OSLO])
    heard.topic(settings_topic("nettlege"))  # one dispatch calls both listeners before this test resumes
    assert (await other.service(OSLO, "nettlege")) == NETTLEGE
    await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")  # caches: open
    await store.service_settings.set_opening_hours(T, "nettlege", OpeningHours(default="closed"))
    ola = Principal("ola", Role.CITIZEN, T, "Ola")
    with pytest.raises(ServiceClosed):
        await store.rooms.join_queue(ola, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")
    await heard.until(SettingsChanged("nettlege"))
    assert (await other.service(OSLO, "nettlege")).opening_hours.default == "closed"  # type: ignore[union-attr]
    await store.service_settings.clear(T, "nettlege")
    clock.advance(1)
    assert (await store.rooms.join_queue(ola, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="x")).place.position == 2
    unfollow()


async def test_take_next_opens_the_consultation_audits_and_calls_the_owner(store, heard):  # type: ignore[no-untyped-def]
    queued = await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")
    heard.topic(queue_topic("nettlege"))
    heard.topic(ticket_topic(queued.ticket.id))
    ticket, consultation = await store.rooms.take_next(DR, "nettlege")
    heard.topic(consultation_topic(consultation.id))  # (after: its id is new; the event below may be missed)
    assert ticket.id == queued.ticket.id and ticket.state == TicketState.TAKEN
    assert {p.subject for p in consultation.participants} == {"kari", "dr"}
    assert consultation.participant_for("kari").display_name == "Kari Nordmann"  # type: ignore[union-attr]
    await heard.until(TicketCalled(ticket.id, consultation.id), QueueChanged("nettlege"))
    assert "ticket.taken" in await _actions(store, consultation.id)
    assert await store.rooms.take_next(DR, "nettlege") is None


async def test_leave_and_triage_audit_and_announce(store, heard):  # type: ignore[no-untyped-def]
    queued = await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")
    heard.topic(queue_topic("nettlege"))
    nurse = Principal("sykepleier", Role.NURSE, T, "Sykepleier")
    triaged = await store.rooms.set_priority(nurse, queued.ticket, Priority.RED)
    assert triaged.priority == Priority.RED and triaged.enqueued_at == queued.ticket.enqueued_at
    await heard.until(QueueChanged("nettlege"))
    heard.events.clear()
    await store.rooms.leave_queue(KARI, triaged)
    await heard.until(QueueChanged("nettlege"))
    assert await _actions(store) == ["ticket.joined", "ticket.priority", "ticket.left"]
    with pytest.raises(Conflict):
        await store.rooms.leave_queue(KARI, triaged)


async def test_the_lobby_knock_decide_and_end(store, heard):  # type: ignore[no-untyped-def]
    c = await store.rooms.create_consultation(DR, T, "nettlege", scheduled_at=None, channel=Channel.VIDEO)
    heard.topic(consultation_topic(c.id))
    guest = Principal("guest:1", Role.RELATIVE, T, "Pårørende")
    p = await store.rooms.knock(guest, c.id)
    assert p.state == ParticipantState.LOBBY and (await store.rooms.knock(guest, c.id)).id == p.id  # keeps it
    await heard.until(Knocked(c.id, p.id, Role.RELATIVE))
    denied = await store.rooms.decide(DR, c.id, p.id, admit=False)
    assert denied.state == ParticipantState.DENIED
    await heard.until(ParticipantDecided(c.id, p.id, False))
    with pytest.raises(Forbidden):  # denied once, denied for good
        await store.rooms.knock(guest, c.id)
    other = await store.rooms.knock(Principal("guest:2", Role.INTERPRETER, T, "Tolk"), c.id)
    assert (await store.rooms.decide(DR, c.id, other.id, admit=True)).state == ParticipantState.ADMITTED
    await heard.until(ParticipantDecided(c.id, other.id, True))
    ended = await store.rooms.end(DR, c.id, Outcome.RESOLVED)
    assert ended.outcome == Outcome.RESOLVED
    await heard.until(ConsultationEnded(c.id, Outcome.RESOLVED))
    with pytest.raises(Conflict):
        await store.rooms.end(DR, c.id, Outcome.RESOLVED)
    assert await _actions(store, c.id) == ["consultation.created", "consultation.knocked", "consultation.denied",
                                           "consultation.knocked", "consultation.admitted", "consultation.ended"]


async def test_a_redeemed_lobby_invite_knocks_and_an_admitting_one_does_not(store, heard):  # type: ignore[no-untyped-def]
    c = await store.rooms.create_consultation(DR, T, "nettlege", scheduled_at=None, channel=Channel.VIDEO)
    heard.topic(consultation_topic(c.id))
    lobby = await store.invites.create(T, c.id, role=Role.INTERPRETER, ttl_s=600, lobby=True, created_by="dr")
    direct = await store.invites.create(T, c.id, role=Role.CITIZEN, ttl_s=600, lobby=False, created_by="dr")
    _, waiting = await store.rooms.redeem_invite(lobby.token, subject="guest:t", display_name="Tolk",
                                                 holder_role=Role.INTERPRETER)
    _, admitted = await store.rooms.redeem_invite(direct.token, subject="guest:c", display_name="Kari",
                                                  holder_role=Role.CITIZEN)
    assert (waiting.state, admitted.state) == (ParticipantState.LOBBY, ParticipantState.ADMITTED)
    await heard.until(Knocked(c.id, waiting.id, Role.INTERPRETER))
    await store.rooms.entered_room(DR, c.id, in_room=2)  # a marker event after the redemptions
    await heard.until(ConsultationChanged(c.id))
    assert [e for e in heard.events if isinstance(e, Knocked)] == [Knocked(c.id, waiting.id, Role.INTERPRETER)]
    assert (await store.consultations.get(T, c.id)).state.value == "active"
    assert await _actions(store, c.id) == ["consultation.created", "invite.redeemed", "invite.redeemed",
                                           "consultation.joined"]


async def test_the_write_limits_are_counted_by_the_join_and_take_scripts(store, clock):  # type: ignore[no-untyped-def]
    """One count per call (an empty queue counts too, a stale head does not count twice), in the same counter
    as every other write of that bucket; the next window opens again."""
    nurse = Principal("sykepleier", Role.NURSE, T, "Sykepleier")
    await store.rate.hit(T, nurse.subject, "write", limit=3, window_s=60)  # a write elsewhere, same bucket
    for service in (NETTLEGE, LEGEVAKT):
        await store.rooms.join_queue(nurse, OSLO, service, channel=Channel.VIDEO, reason="x", writes_per_minute=3)
    with pytest.raises(RateLimited) as err:
        await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="x", writes_per_minute=0)
    assert 1 <= err.value.retry_after_s <= 61 and await store.queue.length(T, "nettlege") == 1  # nothing queued
    assert await store.rooms.take_next(DR, "legevakt", takes_per_minute=3) is not None
    assert await store.rooms.take_next(DR, "legevakt", takes_per_minute=3) is None  # empty: counted all the same
    clock.advance(1)
    await store.rooms.join_queue(KARI, OSLO, LEGEVAKT, channel=Channel.VIDEO, reason="x")  # the head changed
    assert (await store.rooms.take_next(DR, "legevakt", takes_per_minute=3))[0].owner == "kari"  # a 2nd call inside
    with pytest.raises(RateLimited):
        await store.rooms.take_next(DR, "nettlege", takes_per_minute=3)
    assert await store.queue.length(T, "nettlege") == 1  # the refused take took nothing
    clock.advance(60)
    assert (await store.rooms.take_next(DR, "nettlege", takes_per_minute=3))[0].owner == "sykepleier"


async def test_take_next_places_the_new_consultation_on_the_least_loaded_node(store, clock):  # type: ignore[no-untyped-def]
    """On a node, take-next's script records the media node of the consultation it opens, and this process's
    registry answers `assign` for it as the assignment script would; a node that stops is replaced as before."""
    from rooms.keys import Keys
    from rooms.nodes import NodeRegistry

    registry = NodeRegistry(store.redis, clock, timeout_s=6.0)
    await registry.heartbeat("busy", "http://10.0.0.1:8080", 0.9)
    await registry.heartbeat("idle", "http://10.0.0.2:8080", 0.1)
    store.nodes = registry
    await store.rooms.join_queue(KARI, OSLO, NETTLEGE, channel=Channel.VIDEO, reason="hoste")
    _, consultation = await store.rooms.take_next(DR, "nettlege")
    assert await store.redis.get(Keys(T).consultation_node(consultation.id)) == "idle"
    assert (await registry.assign(T, consultation.id)).id == "idle"  # type: ignore[union-attr]
    other_process = NodeRegistry(store.redis, clock, timeout_s=6.0)
    assert (await other_process.assign(T, consultation.id)).id == "idle"  # type: ignore[union-attr]
    clock.advance(5)
    await registry.heartbeat("busy", "http://10.0.0.1:8080", 0.9)  # "idle" stops beating
    clock.advance(2)
    assert (await registry.assign(T, consultation.id)).id == "busy"  # type: ignore[union-attr]
    assert await store.redis.get(Keys(T).consultation_node(consultation.id)) == "busy"
    store.nodes = None
    await store.rooms.join_queue(Principal("ola", Role.CITIZEN, T, "Ola"), OSLO, NETTLEGE, channel=Channel.VIDEO,
                                 reason="x")
    _, unplaced = await store.rooms.take_next(DR, "nettlege")  # not a node: placed when first asked
    assert await store.redis.get(Keys(T).consultation_node(unplaced.id)) is None
