"""Recovery on a network change (issue 10): a phone moving from Wi-Fi to 4G gets media back within 2 s.

The subscriber runs inside a network namespace; its address changes mid-call (the old one disappears, so
its sockets and its WebSocket die with it). Like the web client on the browser's `online` event, it opens a
new signaling WebSocket with its session token and a new peer connection; the server replaces the
participant's old peer connection (`Room.join` with the same participant id).
"""

from __future__ import annotations

import time

import pytest

from tests import netns
from tests.net.conftest import doctor_in_call

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]

RECOVERY_S = 2.0


def _frames_from(client, sender: int, pc: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    """Decoded frames of `sender` on the client's `pc`-th peer connection."""
    return [e for e in client.of("frame") if e["sender"] == sender and e["pc"] == pc]


async def test_a_subscriber_whose_address_changes_gets_media_again_within_two_seconds(
        served, namespace: netns.Namespace, net_client) -> None:
    async with doctor_in_call(served, namespace) as call:
        citizen = net_client(call.cid, call.citizen_token)  # subscribes only, as a patient with the camera off
        await citizen.wait_for(lambda: len(_frames_from(citizen, 1)) >= 30, 20, "30 frames of the doctor")
        participant_id = citizen.of("welcome")[0]["participant_id"]
        last_counter = _frames_from(citizen, 1)[-1]["counter"]

        changed_at = time.monotonic()
        new_ip = namespace.readdress()
        citizen.send(cmd="online", listen_ip=new_ip)  # the browser's `online` event

        await citizen.wait_for(lambda: _frames_from(citizen, 1, pc=2), 10,
                               "the doctor's picture after the address change")
        first = _frames_from(citizen, 1, pc=2)[0]
        recovery_s = first["at"] - changed_at
        print(f"media back {recovery_s:.3f} s after the address change")
        assert first["counter"] > last_counter  # a new picture, decoded, not an old frame
        assert recovery_s < RECOVERY_S, f"media came back after {recovery_s:.2f} s"
        # Still the same participant: the server replaced its peer connection instead of adding one.
        assert citizen.of("welcome")[-1]["participant_id"] == participant_id
        await call.doctor.media.wait_for(lambda: len(call.doctor.media.participants) == 2, 5, "two participants")
