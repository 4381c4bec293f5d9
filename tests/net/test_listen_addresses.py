"""Where media listens (issue 10): a server bound to one address gathers and announces only that address."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from load_tests.clients import MediaClient, SignalClient
from signaling.config import ConfigError, load_config
from tests import netns
from tests.signal.conftest import take_consultation

pytestmark = pytest.mark.media


def _candidate_hosts(sdps: list[str]) -> set[str]:
    return {line.split()[4] for sdp in sdps for line in sdp.splitlines() if line.startswith("a=candidate")}


def _machine_addresses() -> set[str]:
    return {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}


async def test_a_server_bound_to_one_address_announces_only_that_address(
        served, namespace: netns.Namespace, net_client) -> None:
    cid, citizen_token, doctor_token = await take_consultation(served)
    base = str(served.make_url("/"))
    async with aiohttp.ClientSession() as http:
        doctor = SignalClient(http, base, cid, doctor_token, MediaClient("doctor", sender_id=1,
                              listen_ips=(namespace.host_ip,)), "doctor")
        try:
            await doctor.connect(origin=base.rstrip("/"))
            citizen = net_client(cid, citizen_token, "--publish", "--sender-id", "2")
            # The citizen, on the other side of a real link, sees the doctor; the doctor sees the citizen.
            await citizen.wait_for(lambda: len([e for e in citizen.of("frame") if e["sender"] == 1]) >= 10,
                                   20, "10 frames of the doctor in the namespace")
            await doctor.media.wait_for(
                lambda: any(len(r.markers) >= 10 and r.markers[-1][0] == 2
                            for r in doctor.media.tracks_by_kind("video")), 20, "10 frames of the citizen")
            sdps = [m["sdp"] for m in doctor.media.messages if m.get("type") in ("answer", "offer")]
            assert _candidate_hosts(sdps) == {namespace.host_ip}
            assert _machine_addresses() - {namespace.host_ip}, "the machine has other addresses to leave out"
        finally:
            await doctor.close()


def test_listen_and_announced_addresses_come_from_config_and_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = load_config(environ={"NETTLEGE_ENV": "test"})
    assert base.media.listen_ips is None and base.media.announced_ip is None
    config = load_config(environ={"NETTLEGE_MEDIA_LISTEN_IPS": "198.51.100.1, 127.0.0.1",
                                  "NETTLEGE_MEDIA_ANNOUNCED_IP": "203.0.113.9"})
    assert config.media.listen_ips == ["198.51.100.1", "127.0.0.1"]
    assert config.media.announced_ip == "203.0.113.9"
    path = tmp_path / "c.toml"
    path.write_text('[[tenants]]\nid = "t"\nname = "T"\n[media]\nlisten_ips = ["not-an-address"]\n')
    with pytest.raises(ConfigError, match=r"media\.listen_ips"):
        load_config(path, environ={})
