"""The one codec between typed events and the pub/sub wire: every event type round-trips through its topic, the
wire keeps the message shapes listeners of the previous version read, and anything else is refused cleanly."""

from __future__ import annotations

import json

import pytest

from rooms.events import (
    ChatMessageStored,
    ConsultationChanged,
    ConsultationEnded,
    Event,
    EventDecodeError,
    EventHub,
    Knocked,
    ParticipantDecided,
    QueueChanged,
    Resync,
    SettingsChanged,
    TicketCalled,
    TicketChannelChanged,
    channel_of,
    decode,
    encode,
)
from rooms.keys import Keys
from rooms.models import Outcome, Role

EVERY_EVENT: list[Event] = [
    QueueChanged("nettlege"),
    TicketCalled("t_1", "c_1"),
    TicketChannelChanged("t_1"),
    ConsultationChanged("c_1"),
    Knocked("c_1", "p_1", Role.INTERPRETER),
    ParticipantDecided("c_1", "p_1", True),
    ParticipantDecided("c_1", "p_1", False),
    ConsultationEnded("c_1", Outcome.PHYSICAL_FOLLOWUP),
    ConsultationEnded("c_1", None),
    ChatMessageStored("c_1", "1700000000000-0", "sid-1"),
    ChatMessageStored("c_1", "1700000000000-1", None),
    SettingsChanged("legevakt"),
]


def test_the_list_covers_every_event_type():
    assert {type(e) for e in EVERY_EVENT} == set(Event.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: f"{type(e).__name__}")
def test_every_event_round_trips_through_its_topic(event: Event):
    topic, message = encode(event)
    assert decode(topic, message) == event
    assert decode(topic, message.encode()) == event  # as redis-py hands it without decode_responses


@pytest.mark.parametrize("event, topic, message", [
    (QueueChanged("nettlege"), "queue:nettlege", {"type": "queue_changed"}),
    (TicketCalled("t_1", "c_1"), "ticket:t_1", {"type": "called", "consultation_id": "c_1"}),
    (ConsultationChanged("c_1"), "consultation:c_1", {"type": "changed"}),
    (Knocked("c_1", "p_1", Role.CITIZEN), "consultation:c_1",
     {"type": "knock", "participant_id": "p_1", "role": "citizen"}),
    (ParticipantDecided("c_1", "p_1", True), "consultation:c_1", {"type": "admitted", "participant_id": "p_1"}),
    (ParticipantDecided("c_1", "p_1", False), "consultation:c_1", {"type": "denied", "participant_id": "p_1"}),
    (ConsultationEnded("c_1", Outcome.NO_SHOW), "consultation:c_1", {"type": "ended", "outcome": "no-show"}),
    (ChatMessageStored("c_1", "1-0", "s"), "consultation:c_1", {"type": "chat_message", "id": "1-0", "skip_sid": "s"}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_wire_keeps_the_previous_versions_message_shapes(event: Event, topic: str, message: dict):
    """A process of the previous version in the same deploy reads these and publishes these."""
    assert encode(event) == (topic, json.dumps(message))
    assert decode(topic, json.dumps(message)) == event


@pytest.mark.parametrize("topic, message", [
    ("consultation:c_1", '{"type": "teleported"}'),  # unknown type
    ("queue:nettlege", '{"type": "called", "consultation_id": "c_1"}'),  # a known type on the wrong topic
    ("consultation:c_1", '{"type": "knock", "participant_id": "p_1", "role": "wizard"}'),  # unknown role
    ("consultation:c_1", '{"type": "knock", "role": "citizen"}'),  # a missing id
    ("consultation:c_1", '{"type": "admitted", "participant_id": 7}'),  # a mistyped id
    ("consultation:c_1", '{"type": "ended", "outcome": "cured"}'),  # unknown outcome
    ("consultation:c_1", '{"type": "chat_message", "id": ""}'),  # an empty id
    ("consultation:c_1", '["changed"]'),  # not an object
    ("consultation:c_1", '{"kind": "changed"}'),  # no type
    ("consultation:c_1", "not json"),
    ("consultation:c_1", b"\xff\xfe"),  # not UTF-8
    ("consultation:", '{"type": "changed"}'),  # a topic without its id
    ("mystery:x", '{"type": "changed"}'),  # a topic kind nobody publishes
])
def test_anything_else_is_refused_with_a_decode_error(topic: str, message: str | bytes):
    with pytest.raises(EventDecodeError):
        decode(topic, message)


def test_channels_are_declared_by_the_key_module():
    channel, message = channel_of("oslo", TicketCalled("t_9", "c_9"))
    assert channel == Keys("oslo").events("ticket:t_9") and json.loads(message)["consultation_id"] == "c_9"


def test_the_hub_hands_listeners_typed_events_and_drops_what_it_cannot_read():
    hub = EventHub(redis=None)  # type: ignore[arg-type]  # deliver() needs no connection
    got: list[Event | Resync] = []
    remove = hub.add("oslo", "consultation:c_1", got.append)
    hub.deliver("oslo", "consultation:c_1", '{"type": "knock", "participant_id": "p_1", "role": "relative"}')
    hub.deliver("oslo", "consultation:c_1", '{"type": "from_a_newer_version"}')
    hub.deliver("oslo", "consultation:c_2", '{"type": "changed"}')  # nobody listens there
    assert got == [Knocked("c_1", "p_1", Role.RELATIVE)] and hub.undecodable == 1
    hub._resync_all()
    assert got[-1] == Resync()
    remove()
    hub.deliver("oslo", "consultation:c_1", '{"type": "changed"}')
    assert len(got) == 2
