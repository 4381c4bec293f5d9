"""Knocking: someone not pre-authorised waits in a consultation's lobby, and the hosts are told.

Used by the REST knock route, the signaling WebSocket and invite redemption, so a knock is stored,
audited and announced the same way wherever it comes from.
"""

from __future__ import annotations

from rooms.errors import Forbidden
from rooms.events import consultation_topic
from rooms.models import Participant, ParticipantState, Principal
from rooms.store import Store

# Knocks per consultation and minute, whoever knocks: a clinician's lobby list cannot be flooded.
KNOCKS_PER_MINUTE = 20


async def announce_knock(store: Store, tenant: str, cid: str, participant: Participant) -> None:
    # Ids only on pub/sub: the listeners read the display name from the store (where it is sealed at rest).
    await store.events.publish(tenant, consultation_topic(cid),
                               {"type": "knock", "participant_id": participant.id, "role": participant.role.value})


async def knock(store: Store, principal: Principal, cid: str) -> Participant:
    """Put the caller in the lobby (a caller already present keeps the place it has), audit and announce.

    A denied caller stays denied (Forbidden `denied`, no new knock to announce); new knocks on one
    consultation are rate-limited (RateLimited)."""
    existing = (await store.consultations.get(principal.tenant, cid)).participant_for(principal.subject)
    if existing is not None:
        if existing.state == ParticipantState.DENIED:
            raise Forbidden("Du ble ikke sluppet inn i denne konsultasjonen.", code="denied")
        return existing
    await store.rate.hit(principal.tenant, f"consultation:{cid}", "knock", limit=KNOCKS_PER_MINUTE, window_s=60)
    participant = await store.consultations.add_participant(
        principal.tenant, cid, subject=principal.subject, role=principal.role, display_name=principal.name,
        state=ParticipantState.LOBBY, audit=True)  # consultation.knocked in the same script
    await announce_knock(store, principal.tenant, cid, participant)
    return participant
