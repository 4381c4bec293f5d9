"""RTP-level forwarding and bandwidth adaptation end to end: real aiortc peers on loopback, decoded content
checked. Loss is made in the client's receive path (this kernel has no netem)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from media import MediaConfig, Sfu
from media.aiortc_passthrough import encoder_target_bitrate, on_remb_received, report_bandwidth
from tests.media.conftest import MEDIA_CONFIG, audio_from, connect, has_picture, video_from

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]


def video_receiver(client: Any) -> Any:
    [transceiver] = [t for t in client.pc.getTransceivers() if t.kind == "video" and t.receiver.track is not None
                     and t.currentDirection in ("recvonly", "sendrecv")]
    return transceiver.receiver


def video_sender(client: Any) -> Any:
    [sender] = [s for s in client.pc.getSenders() if s.kind == "video" and s.track is not None]
    return sender


def record_packets(receiver: Any, into: list[tuple[int, int, int, int]]) -> None:
    """(ssrc, payload type, sequence number, timestamp) of every RTP packet the client's receiver gets."""
    original = receiver._handle_rtp_packet

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        into.append((packet.ssrc, packet.payload_type, packet.sequence_number, packet.timestamp))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle


async def test_a_subscribers_lost_packets_are_retransmitted_from_the_servers_history(sfu, make_client) -> None:
    room = sfu.room("c-nack")
    doctor, citizen = make_client("doctor", sender_id=1), make_client("citizen", sender_id=2, video_labels=())
    await connect(room, doctor)
    await connect(room, citizen)
    await citizen.wait_for(has_picture(citizen, "doctor", frames=10))
    receiver = video_receiver(citizen)
    media_ssrcs = {s for s in receiver._RTCRtpReceiver__rtx_ssrc.values()}
    original = receiver._handle_rtp_packet
    dropped: set[int] = set()
    retransmitted: set[int] = set()
    seen = 0

    async def lossy(packet: Any, arrival_time_ms: int) -> None:  # drops every 25th packet, once
        nonlocal seen
        if packet.ssrc in media_ssrcs:
            seen += 1
            if seen % 25 == 0 and packet.sequence_number not in dropped:
                dropped.add(packet.sequence_number)
                return
        elif len(packet.payload) >= 2:  # RTX: the original sequence number comes first
            retransmitted.add(int.from_bytes(packet.payload[:2], "big"))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = lossy
    [video] = video_from(citizen, "doctor")
    before = len(video.markers)
    await citizen.wait_for(lambda: len(dropped) >= 4 and dropped <= retransmitted, within_s=20,
                           what="retransmissions of every dropped packet")
    await citizen.wait_for(lambda: len(video.markers) > before + 30, what="the picture going on")
    assert video.counters_in_order() and {s for s, _ in video.markers} == {1}
    # Answered by the server from its own history: the doctor was never asked for these.
    [published] = [t for t in room.peer("doctor").published.values() if t.kind == "video"]
    assert published.counters.dropped_frames == 0


async def test_a_burst_of_picture_loss_indications_reaches_the_publisher_rate_limited(sfu, make_client) -> None:
    room = sfu.room("c-pli-burst")
    doctor, citizen = make_client("doctor", sender_id=1), make_client("citizen", sender_id=2, video_labels=())
    await connect(room, doctor)
    await connect(room, citizen)
    await citizen.wait_for(has_picture(citizen, "doctor", frames=10))
    sender = video_sender(doctor)
    at_publisher: list[float] = []
    original = sender._send_keyframe
    loop = asyncio.get_running_loop()

    def spy() -> None:
        at_publisher.append(loop.time())
        original()

    sender._send_keyframe = spy
    # The rate limit is checked where it is applied, at the server's requester: when it let each PLI go. The
    # publisher's arrival times add loopback and scheduling jitter, which a busy machine stretches either way.
    [published] = [t for t in room.peer("doctor").published.values() if t.kind == "video"]
    requester = published._keyframes
    let_go: list[float] = []
    send_pli = requester._send_pli

    async def counted_send_pli() -> bool:
        let_go.append(requester._last)
        return await send_pli()

    requester._send_pli = counted_send_pli
    receiver = video_receiver(citizen)
    [source] = [s.source for s in receiver.getSynchronizationSources()
                if s.source in receiver._RTCRtpReceiver__rtx_ssrc.values()]
    for _ in range(20):  # a decoder in trouble asking again and again
        await receiver._send_rtcp_pli(source)
        await asyncio.sleep(0.05)
    await citizen.wait_for(lambda: bool(at_publisher), what="a PLI at the publisher")
    await citizen.wait_for(lambda: len(at_publisher) >= len(let_go), what="every PLI let go at the publisher")
    interval = sfu.config.keyframe_min_interval_s
    # 20 requests in about a second (longer on a busy machine) come out as PLIs at least an interval apart.
    assert let_go and all(b - a >= interval - 1e-6 for a, b in itertools.pairwise(let_go))  # 1e-6: clock


async def test_sequence_numbers_and_timestamps_continue_when_an_m_line_gets_a_new_publisher(
        sfu, make_client) -> None:
    room = sfu.room("c-switch")
    doctor, phone = make_client("doctor", sender_id=1), make_client("citizen", sender_id=2)
    await connect(room, doctor)
    await connect(room, phone)
    await doctor.wait_for(has_picture(doctor, "citizen", frames=10))
    packets: list[tuple[int, int, int, int]] = []
    record_packets(video_receiver(doctor), packets)
    await doctor.wait_for(lambda: len(packets) > 20)
    phone_on_4g = make_client("citizen", sender_id=5)  # the citizen's new connection: a new publisher
    await connect(room, phone_on_4g)
    await doctor.wait_for(lambda: any(len(v.markers) > 20 and {s for s, _ in v.markers[-10:]} == {5}
                                      for v in video_from(doctor, "citizen")), what="the new publisher")
    media = [p for p in packets if p[1] == packets[0][1]]  # not RTX
    assert len({ssrc for ssrc, *_ in media}) == 1  # the same stream for the subscriber
    steps = [((b[2] - a[2]) & 0xFFFF, (b[3] - a[3]) & 0xFFFFFFFF) for a, b in itertools.pairwise(media)]
    assert all(seq == 1 for seq, _ in steps), [s for s in steps if s[0] != 1]
    # Timestamps never jump backwards or by more than the pause between the publishers.
    assert all(ts < 90000 * 10 for _, ts in steps)
    [video] = [v for v in video_from(doctor, "citizen") if {s for s, _ in v.markers[-10:]} == {5}]
    new = [c for s, c in video.markers if s == 5]
    assert new == sorted(new) and len(set(new)) == len(new)  # the new publisher's frames, decoded in order


async def test_a_subscribers_estimate_caps_what_a_live_encoding_publisher_is_told_to_send(make_client) -> None:
    sfu = Sfu(MediaConfig(**{**MEDIA_CONFIG.__dict__, "max_video_bitrate_bps": 900_000}))
    try:
        room = sfu.room("c-remb")
        doctor = make_client("doctor", sender_id=1, noise=True)
        subscribers = [make_client(f"s{i}", sender_id=2 + i, video_labels=()) for i in range(2)]
        estimates = {"s0": 5_000_000, "s1": 5_000_000}
        await connect(room, doctor)
        told: list[int] = []
        on_remb_received(video_sender(doctor), told.append)
        for subscriber in subscribers:
            await connect(room, subscriber)
            await subscriber.wait_for(has_picture(subscriber, "doctor", frames=5))
            report_bandwidth(video_receiver(subscriber), lambda name=subscriber.name: estimates[name])
        # Both subscribers have plenty: the service's cap.
        await doctor.wait_for(lambda: told and told[-1] == 900_000, within_s=10, what="the service cap")
        estimates["s1"] = 400_000  # one subscriber's link gets weaker: everyone's publisher slows down
        told.clear()
        share = int(400_000 * sfu.config.estimate_headroom) - sfu.config.audio_allowance_bps  # headroom, and audio
        await doctor.wait_for(lambda: len(told) >= 3 and max(told[-3:]) <= share, within_s=10,
                              what="the lower cap")
        told.clear()
        await doctor.wait_for(lambda: len(told) >= 4, what="more REMB")
        assert max(told) <= share  # from then on never above the weakest subscriber's estimate
        target = encoder_target_bitrate(video_sender(doctor))
        assert target is not None and target <= share  # the publisher's encoder follows it
        for subscriber in subscribers:  # and the picture goes on for both
            [video] = video_from(subscriber, "doctor")
            before = len(video.markers)
            await subscriber.wait_for(lambda v=video, b=before: len(v.markers) > b + 10)
    finally:
        await sfu.close()


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_video_pauses_for_a_subscriber_that_cannot_carry_it_audio_goes_on_and_a_probe_brings_it_back(
        make_client) -> None:
    sfu = Sfu(MediaConfig(**{**MEDIA_CONFIG.__dict__, "pause_video_when_overrun": True}))
    try:
        await _pause_and_probe(sfu, make_client)
    finally:
        await sfu.close()


async def _pause_and_probe(sfu: Sfu, make_client: Any) -> None:
    room = sfu.room("c-pause")
    doctor = make_client("doctor", sender_id=1, noise=True, size=(160, 120))  # ~0.7 Mbit/s
    weak = make_client("weak", sender_id=2, video_labels=())
    strong = make_client("strong", sender_id=3, video_labels=())
    await connect(room, doctor)
    for client in (weak, strong):
        await connect(room, client)
        await client.wait_for(has_picture(client, "doctor", frames=5))
    clock = ManualClock()  # the weak subscriber's pause and probe follow this clock, not the machine's load
    room.peer("weak").bandwidth.clock = clock
    estimate = {"bps": 80_000}
    reports: list[int] = []

    def report() -> int:  # a low estimate goes on while this clock moves, a fifth of a second per report
        reports.append(estimate["bps"])
        if estimate["bps"] < sfu.config.video_pause_bps:
            clock.now += 0.2
        return estimate["bps"]

    receiver = video_receiver(weak)
    report_bandwidth(receiver, report)
    # The weak link loses a fifth of the video (retransmissions repair it, the receiver reports count it).
    media_ssrcs = set(receiver._RTCRtpReceiver__rtx_ssrc.values())
    original, seen = receiver._handle_rtp_packet, [0]

    async def lossy(packet: Any, arrival_time_ms: int) -> None:
        seen[0] += 1
        if estimate["bps"] < sfu.config.video_pause_bps and packet.ssrc in media_ssrcs and seen[0] % 5 == 0:
            return
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = lossy

    def quality(client: Any) -> list[dict[str, Any]]:
        return [m for m in client.messages if m.get("type") == "quality"]

    await weak.wait_for(lambda: bool(quality(weak)), within_s=15, what="a quality event")
    assert quality(weak) == [{"type": "quality", "participant_id": "doctor", "video": "paused",
                              "reason": "bandwidth"}]
    [video] = video_from(weak, "doctor")
    [audio] = audio_from(weak, "doctor")
    [strong_video] = video_from(strong, "doctor")
    [weak_forwarder] = [f for f in room.peer("weak").subscribed_tracks() if f.kind == "video"]
    sent_at_pause, forwarded = weak_forwarder.counters.packets, sfu.counters.forwarded_packets
    drawn_at_pause = doctor.video_tracks[0].counter  # the publisher's frames so far
    loud, strong_before = audio.loud_frames, len(strong_video.markers)
    await weak.wait_for(lambda: audio.loud_frames > loud + 100, what="audio during the pause")
    await strong.wait_for(lambda: len(strong_video.markers) > strong_before + 20, what="the strong one's video")
    assert weak_forwarder.counters.packets == sent_at_pause  # no video to the weak subscriber only
    # What it still decodes was sent before the pause (its client repairs and releases it late).
    assert all(counter < drawn_at_pause for _, counter in video.markers), (drawn_at_pause, video.markers[-5:])
    assert sfu.counters.forwarded_packets > forwarded and not quality(strong)

    estimate["bps"] = 1_000_000  # the link recovers (no loss); no estimate arrives without video: a probe
    clock.now += sfu.config.video_probe_after_s
    await weak.wait_for(lambda: len(quality(weak)) == 2, within_s=15, what="video back")
    assert quality(weak)[-1] == {"type": "quality", "participant_id": "doctor", "video": "on", "reason": "bandwidth"}
    def new_frames() -> list[int]:  # drawn after the pause began (its client may still release older ones)
        return [counter for sender, counter in video.markers if counter >= drawn_at_pause and sender == 1]

    # The aiortc client may still hold frames behind a hole the lossy link left before the pause, and
    # decode a few out of order while its buffer catches up; then the picture is in order again.
    await weak.wait_for(lambda: len(new_frames()) > 20 and all(
        b > a for a, b in itertools.pairwise(new_frames()[-10:])), within_s=20, what="the picture again, in order")
    await weak.wait_for(lambda: len(reports) > 5 and reports[-1] == 1_000_000)
    assert len(quality(weak)) == 2 and sfu.counters.video_pauses == 1
