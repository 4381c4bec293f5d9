"""Consultation lifecycle in the store: scheduled -> waiting -> active -> ended, participants, lobby."""

import pytest

from rooms.errors import Conflict, NotFound
from rooms.models import ConsultationState, Outcome, ParticipantState, Role


async def test_lifecycle_of_a_booked_consultation(store):
    c = await store.consultations.create("oslo", "nettlege", creator="booking", creator_role=Role.BOOKING,
                                         creator_name="", scheduled_at=1_900_000_000.0)
    assert c.state == ConsultationState.SCHEDULED and c.participants == []
    assert await store.consultations.open("oslo", c.id)
    assert not await store.consultations.open("oslo", c.id)
    assert (await store.consultations.get("oslo", c.id)).state == ConsultationState.WAITING
    assert await store.consultations.activate("oslo", c.id)
    assert not await store.consultations.activate("oslo", c.id)
    ended = await store.consultations.end("oslo", c.id, Outcome.NO_SHOW)
    assert ended.state == ConsultationState.ENDED and ended.outcome == Outcome.NO_SHOW
    with pytest.raises(Conflict):
        await store.consultations.end("oslo", c.id, Outcome.RESOLVED)
    with pytest.raises(Conflict):
        await store.consultations.add_participant("oslo", c.id, subject="x", role=Role.RELATIVE, display_name="X",
                                                  state=ParticipantState.LOBBY)


async def test_participants_and_lobby(store):
    c = await store.consultations.create("oslo", "nettlege", creator="dr", creator_role=Role.CLINICIAN,
                                         creator_name="Dr")
    p = await store.consultations.add_participant("oslo", c.id, subject="rel", role=Role.RELATIVE,
                                                  display_name="Rel", state=ParticipantState.LOBBY)
    again = await store.consultations.add_participant("oslo", c.id, subject="rel", role=Role.RELATIVE,
                                                      display_name="Rel", state=ParticipantState.ADMITTED)
    assert again.id == p.id and again.state == ParticipantState.LOBBY  # knocking twice changes nothing
    admitted = await store.consultations.decide("oslo", c.id, p.id, admit=True)
    assert admitted.state == ParticipantState.ADMITTED
    with pytest.raises(Conflict):
        await store.consultations.decide("oslo", c.id, p.id, admit=False)
    with pytest.raises(NotFound):
        await store.consultations.decide("oslo", c.id, "p_nobody", admit=True)
    with pytest.raises(NotFound):
        await store.consultations.get("bergen", c.id)
    assert await store.consultations.of_subject("oslo", "rel") == [c.id]
