import base64
import hashlib
import hmac

from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy
from aiortc.rtcicetransport import connection_kwargs

from media.config import MediaConfig
from media.ice import IceConfig, TurnConfig, rtc_configuration, turn_rest_credentials


def test_turn_rest_credentials_follow_the_coturn_rest_api() -> None:
    username, credential = turn_rest_credentials("s3cret", "participant-1", ttl_s=600, now=1_700_000_000)
    assert username == "1700000600:participant-1"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert credential == expected


def test_ice_servers_include_stun_turn_over_tcp_and_turns_on_443() -> None:
    config = IceConfig(stun_urls=["stun:turn.example.no:3478"],
                       turn=TurnConfig(urls=["turn:turn.example.no:3478?transport=udp",
                                             "turn:turn.example.no:3478?transport=tcp",
                                             "turns:turn.example.no:443"], secret="x", ttl_s=60))
    servers = config.ice_servers("p1", now=1000)
    assert servers[0] == {"urls": ["stun:turn.example.no:3478"]}
    assert servers[1]["urls"][1].endswith("?transport=tcp")
    assert servers[1]["urls"][2] == "turns:turn.example.no:443"
    assert servers[1]["username"] == "1060:p1"


def test_no_ice_servers_configured_means_an_empty_list_not_a_public_stun_server() -> None:
    assert IceConfig().ice_servers("p1") == []
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
