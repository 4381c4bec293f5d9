"""Knocking: someone not pre-authorised waits in a consultation's lobby, and the hosts are told.

Used by the REST knock route, the signaling WebSocket and invite redemption, so a knock is stored,
audited and announced the same way wherever it comes from.
"""

from __future__ import annotations

from rooms.audit import Action
from rooms.events import consultation_topic
from rooms.models import Participant, ParticipantState, Principal
from rooms.store import Store


async def announce_knock(store: Store, tenant: str, cid: str, participant: Participant) -> None:
    await store.events.publish(tenant, consultation_topic(cid),
                               {"type": "knock", "participant_id": participant.id,
                                "role": participant.role.value, "display_name": participant.display_name})


async def knock(store: Store, principal: Principal, cid: str) -> Participant:
    """Put the caller in the lobby (a caller already present keeps the place it has), audit and announce."""
    participant = await store.consultations.add_participant(
        principal.tenant, cid, subject=principal.subject, role=principal.role, display_name=principal.name,
        state=ParticipantState.LOBBY)
    await store.audit.record(principal.tenant, Action.CONSULTATION_KNOCKED, actor=principal.subject,
                             role=principal.role, consultation_id=cid)
    await announce_knock(store, principal.tenant, cid, participant)
    return participant
