import base64
import hashlib
import hmac
import time

from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy
from aiortc.rtcicetransport import connection_kwargs

from media.config import MediaConfig
from media.ice import rtc_configuration, turn_rest_credentials
from signaling.signal_ws import ice_servers_for


def test_turn_rest_credentials_follow_the_coturn_rest_api() -> None:
    username, credential = turn_rest_credentials("s3cret", "participant-1", ttl_s=600, now=1_700_000_000)
    assert username == "1700000600:participant-1"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert credential == expected


def test_ice_servers_include_stun_turn_over_tcp_and_turns_on_443(make_config) -> None:
    config = make_config(ice_servers=[{"urls": ["stun:turn.example.no:3478"]}],
                         turn={"urls": ["turn:turn.example.no:3478?transport=udp",
                                        "turn:turn.example.no:3478?transport=tcp",
                                        "turns:turn.example.no:443"], "secret": "x", "ttl_s": 60})
    before = int(time.time())
    servers = ice_servers_for(config, "p1")
    assert servers[0] == {"urls": ["stun:turn.example.no:3478"]}
    assert servers[1]["urls"][1].endswith("?transport=tcp")
    assert servers[1]["urls"][2] == "turns:turn.example.no:443"
    expiry, user = servers[1]["username"].split(":")
    assert user == "p1" and before + 60 <= int(expiry) <= int(time.time()) + 60
    assert servers[1]["credential"] == turn_rest_credentials("x", "p1", 60, now=int(expiry) - 60)[1]


def test_no_ice_servers_configured_means_an_empty_list_not_a_public_stun_server(make_config) -> None:
    assert ice_servers_for(make_config(), "p1") == []
    configuration = rtc_configuration([])
    assert configuration.iceServers == []
    assert connection_kwargs(configuration.iceServers) == {}
    assert configuration.bundlePolicy == RTCBundlePolicy.MAX_BUNDLE


def test_relay_only_configuration_reaches_aioice_as_tcp_turn() -> None:
    username, credential = turn_rest_credentials("x", "p1", 60)
    configuration = rtc_configuration([{"urls": ["turn:127.0.0.1:3478?transport=tcp"], "username": username,
                                        "credential": credential}], relay_only=True)
    assert configuration.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    kwargs = connection_kwargs(configuration.iceServers)
    assert kwargs["turn_server"] == ("127.0.0.1", 3478) and kwargs["turn_transport"] == "tcp"
    assert kwargs["turn_username"] == username


def test_a_loopback_host_gathers_on_loopback_only() -> None:
    assert MediaConfig.for_host("127.0.0.1").listen_ips == ("127.0.0.1",)
    assert MediaConfig.for_host("localhost").listen_ips == ("127.0.0.1",)
    assert MediaConfig.for_host("0.0.0.0").listen_ips == ()
    assert MediaConfig.for_host("::").listen_ips == ()
    assert MediaConfig.for_host("media.example.no").listen_ips == ()


def test_a_specific_host_listens_on_that_address_only_unless_configured() -> None:
    assert MediaConfig.for_host("10.0.0.5").listen_ips == ("10.0.0.5",)
    assert MediaConfig.for_host("10.0.0.5", ("10.0.0.6", "127.0.0.1")).listen_ips == ("10.0.0.6", "127.0.0.1")


def test_sfu_counters_are_exposed_to_prometheus() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from media import Sfu
    from media.metrics import register

    sfu = Sfu()
    sfu.counters.forwarded_packets = 42
    registry = CollectorRegistry()
    register(sfu, registry)
    text = generate_latest(registry).decode()
    assert "nettlege_media_forwarded_packets_total 42.0" in text
    assert "nettlege_media_udp_receive_errors" in text
    assert "nettlege_media_forwarded_frames_total" in text and "nettlege_media_offered_frames_total" in text


# --- ICE-lite (issue 12 finding 5): the server never dials a client's candidates ----------------------

import asyncio  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402
from aioice import ice as aioice_ice  # noqa: E402

from media import MediaError  # noqa: E402
from media.ice import strip_candidates  # noqa: E402
from tests.media.conftest import connect, has_picture  # noqa: E402


def _decoy() -> socket.socket:
    """A UDP socket on another loopback address, standing in for a host on an internal network."""
    decoy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    decoy.bind(("127.0.0.2", 0))
    decoy.setblocking(False)
    return decoy


def _received(decoy: socket.socket) -> list[bytes]:
    datagrams = []
    while True:
        try:
            datagrams.append(decoy.recv(2048))
        except BlockingIOError:
            return datagrams


def _with_candidate(line: str):  # type: ignore[no-untyped-def]
    def rewrite(sdp: str) -> str:  # the candidate goes into every media section, before the client's own
        return sdp.replace("a=candidate:", f"a={line}\r\na=candidate:")
    return rewrite


@pytest.mark.media
async def test_a_candidate_address_that_never_sent_a_check_receives_nothing(sfu, make_client) -> None:
    room = sfu.room("c-lite")
    with _decoy() as in_sdp, _decoy() as trickled:
        sdp_port, trickled_port = in_sdp.getsockname()[1], trickled.getsockname()[1]
        doctor = make_client("doctor", sender_id=1)
        citizen = make_client("citizen", sender_id=2, rewrite_offer=_with_candidate(
            f"candidate:9 1 udp 2130706431 127.0.0.2 {sdp_port} typ host"))
        await connect(room, doctor, role="clinician")
        await connect(room, citizen)
        await room.peer("citizen").add_candidate(
            {"candidate": f"candidate:8 1 udp 2130706431 127.0.0.2 {trickled_port} typ host", "sdpMid": "0"})
        await room.peer("citizen").add_candidate(None)
        # Both directions work: the server answered the clients' checks and sends to where they came from.
        await doctor.wait_for(has_picture(doctor, "citizen", frames=30), what="citizen's picture")
        await citizen.wait_for(has_picture(citizen, "doctor", frames=30), what="doctor's picture")
        assert _received(in_sdp) == [] and _received(trickled) == []
    answers = [m["sdp"] for m in citizen.messages if m["type"] in ("answer", "offer")]
    assert answers and all("a=ice-lite" in sdp for sdp in answers)
    connection = next(iter(room.peer("citizen").pc.getTransceivers())).receiver.transport.transport
    assert connection.role == "controlled" and connection.iceGatherer._connection.remote_candidates != []
    assert {c.type for c in connection.iceGatherer._connection.remote_candidates} == {"prflx"}


def _udp_ports_of_this_process() -> set[int]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.media
async def test_an_mdns_candidate_opens_no_multicast_socket(sfu, make_client) -> None:
    room = sfu.room("c-mdns")
    citizen = make_client("citizen", sender_id=2, rewrite_offer=_with_candidate(
        "candidate:7 1 udp 2130706431 3f1c0c57-3e2a-4bd4-9d55-2b4b0b3c1e7a.local 54321 typ host"))
    await connect(room, citizen)
    await room.peer("citizen").add_candidate(
        {"candidate": "candidate:6 1 udp 2130706431 0b7f53d6-1c52-4a43-a0a5-6c0c4d5bde35.local 54322 typ host",
         "sdpMid": "0"})
    await citizen.wait_for(lambda: room.peer("citizen").pc.connectionState == "connected", what="connected")
    assert 5353 not in _udp_ports_of_this_process()
    assert getattr(aioice_ice._mdns, "protocol", None) is None


@pytest.mark.media
async def test_too_many_candidates_is_an_error_event_not_the_end(sfu, make_client) -> None:
    room = sfu.room("c-many")
    many = "\r\n".join(f"a=candidate:{i} 1 udp 2130706431 10.9.{i // 250}.{i % 250 + 1} 9 typ host"
                       for i in range(31))
    citizen = make_client("citizen", sender_id=2, rewrite_offer=_with_candidate(many[2:]))
    doctor = make_client("doctor", sender_id=1)
    await connect(room, doctor, role="clinician")
    await connect(room, citizen)
    await citizen.wait_for(lambda: any(m.get("code") == "too_many_candidates" for m in citizen.messages),
                           what="too_many_candidates")
    await doctor.wait_for(has_picture(doctor, "citizen", frames=10), what="the citizen's picture all the same")
    peer = room.peer("citizen")
    for i in range(30):
        await peer.add_candidate({"candidate": f"candidate:{i} 1 udp 1 10.8.0.{i + 1} 9 typ host", "sdpMid": "0"})
    with pytest.raises(MediaError) as error:
        await peer.add_candidate({"candidate": "candidate:99 1 udp 1 10.8.1.1 9 typ host", "sdpMid": "0"})
    assert error.value.code == "too_many_candidates"
    await asyncio.sleep(0)  # still connected and forwarding after the error
    assert peer.pc.connectionState == "connected" and not peer.closed


def test_strip_candidates_counts_distinct_addresses_and_keeps_everything_else() -> None:
    sdp = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 5 10.0.0.1 9 typ host\r\n"
           "a=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 5 10.0.0.1 9 typ host\r\n"
           "a=end-of-candidates\r\na=mid:1\r\n")
    stripped, count = strip_candidates(sdp)
    assert count == 1
    assert stripped == ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n")


@pytest.mark.media
async def test_a_client_whose_checks_stop_has_withdrawn_consent_and_the_server_stops_sending(
        sfu, make_client, monkeypatch) -> None:
    """RFC 7675 on the lite side: a client's checks are its consent; when they stop, so does the server."""
    from media import aiortc_passthrough

    monkeypatch.setattr(aioice_ice, "CONSENT_INTERVAL", 0.2)  # the client checks every ~0.2 s
    monkeypatch.setattr(aiortc_passthrough, "CONSENT_TIMEOUT_S", 1.0)
    room = sfu.room("c-consent")
    doctor, citizen = make_client("doctor", sender_id=1), make_client("citizen", sender_id=2)
    await connect(room, doctor, role="clinician")
    await connect(room, citizen)
    # 60 frames take longer than the timeout: a client that keeps checking keeps its connection.
    await citizen.wait_for(has_picture(citizen, "doctor", frames=60), what="the doctor's picture")
    peer = room.peer("citizen")
    assert peer.pc.connectionState == "connected"
    client_connection = next(iter(aiortc_passthrough.ice_connections(citizen.pc)))
    client_connection._query_consent_task.cancel()  # the client's checks stop (its network went away)
    await citizen.wait_for(lambda: peer.pc.connectionState in ("failed", "closed"), within_s=15,
                           what="the server giving up the connection")
