"""A client behind a strict network: relay-only ICE through a real coturn, over TCP, with REST credentials."""

from __future__ import annotations

import pytest

from media.aiortc_passthrough import ice_connections
from signaling.signal_ws import ice_servers_for
from tests.media.conftest import audio_from, connect, has_picture

pytestmark = [pytest.mark.media, pytest.mark.timeout(60)]


async def test_media_flows_through_coturn_over_tcp_with_a_relay_only_client(sfu, make_client, coturn,
                                                                            make_config) -> None:
    # The credentials come the way production hands them out in `welcome`: from the `turn` config section.
    config = make_config(turn={"urls": [f"turn:127.0.0.1:{coturn.port}?transport=tcp"], "secret": coturn.secret})
    ice_servers = ice_servers_for(config, "citizen")
    room = sfu.room("c-turn")
    doctor = make_client("doctor", sender_id=1)
    citizen = make_client("citizen", sender_id=2, ice_servers=ice_servers, relay_only=True)
    await connect(room, doctor)
    await connect(room, citizen)
    await citizen.wait_for(has_picture(citizen, "doctor", frames=20), within_s=15, what="picture through TURN")
    await doctor.wait_for(has_picture(doctor, "citizen", frames=20), within_s=15)
    await citizen.wait_for(lambda: bool(audio_from(citizen, "doctor"))
                           and audio_from(citizen, "doctor")[0].loud_frames > 10)
    for client in (doctor, citizen):
        [video] = client.tracks_by_kind("video")
        assert video.counters_in_order()

    # The citizen offered only a relayed candidate, and the pair in use goes through coturn's relay.
    offer_sdp = citizen.pc.localDescription.sdp
    types = {line.split()[7] for line in offer_sdp.splitlines() if line.startswith("a=candidate:")}
    assert types == {"relay"}
    [connection] = list(ice_connections(citizen.pc))
    [pair] = connection._nominated.values()
    assert pair.local_candidate.type == "relay" and connection.turn_transport == "tcp"
    assert pair.local_candidate.host == "127.0.0.1"  # coturn's relay address, never the citizen's own
