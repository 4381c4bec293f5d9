"""The per-packet path without a network: a publisher's packets through `PublishedTrack` and `TrackForwarder`
into a port that records what a subscriber would receive."""

import itertools

from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.bandwidth import SubscriberBandwidth
from media.config import MediaConfig
from media.forwarder import TrackForwarder
from media.publisher import PublishedTrack
from media.stats import SfuCounters

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111, channels=2)
CONFIG = MediaConfig(keyframe_min_interval_s=0.0)


class FakePort:
    """Stands in for `RtpSendPort`: records (sequence number, timestamp, payload) as sent."""

    ready = True

    def __init__(self) -> None:
        self.sent: list[tuple[int, int, bytes]] = []

    async def send(self, source: RtpPacket, sequence_number: int, timestamp: int) -> int:
        self.sent.append((sequence_number, timestamp, source.payload))
        return len(source.payload)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def published(plis: list[int], kind: str = "video", clock: Clock | None = None,
              participant: str = "p1") -> PublishedTrack:
    async def send_pli() -> bool:
        plis.append(1)
        return True

    return PublishedTrack(track_id=f"t-{participant}", kind=kind, label="camera", participant_id=participant,
                          codec=VP8 if kind == "video" else OPUS, send_pli=send_pli, config=CONFIG,
                          counters=SfuCounters(), clock=clock or Clock())


def vp8_frame(keyframe: bool, size: int = 2500) -> list[bytes]:
    """Real RFC 7741 payloads, as aiortc's VP8 packetizer makes them (P bit 0 on a keyframe)."""
    frame = bytes([0x10 if keyframe else 0x11]) + bytes(size - 1)
    return Vp8Encoder._packetize(frame, picture_id=1)


class Stream:
    """A publisher's RTP stream: consecutive sequence numbers, 3000 ticks a frame."""

    def __init__(self, seq: int = 65530, ts: int = 4_294_960_000) -> None:
        self.seq, self.ts = seq, ts

    def frame(self, keyframe: bool) -> list[RtpPacket]:
        payloads = vp8_frame(keyframe)
        packets = []
        for i, payload in enumerate(payloads):
            packets.append(RtpPacket(payload_type=97, marker=int(i == len(payloads) - 1),
                                     sequence_number=self.seq, timestamp=self.ts, payload=payload))
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 3000) & 0xFFFFFFFF
        return packets


def subscriber(track: PublishedTrack, kind: str = "video") -> tuple[TrackForwarder, FakePort]:
    forwarder = TrackForwarder(kind, "s1", SfuCounters())
    forwarder.port = FakePort()  # type: ignore[assignment]
    forwarder.attach(track)
    return forwarder, forwarder.port  # type: ignore[return-value]


def continuous(sent: list[tuple[int, int, bytes]]) -> bool:
    return all((b[0] - a[0]) & 0xFFFF == 1 for a, b in itertools.pairwise(sent))


async def test_a_new_subscriber_gets_video_from_the_next_keyframe_and_asks_for_it() -> None:
    plis: list[int] = []
    track = published(plis)
    _, port = subscriber(track)
    stream = Stream()
    for packet in stream.frame(keyframe=False):
        await track.on_packet(packet, True)
    assert port.sent == [] and track._sfu_counters.keyframe_requests
    key = stream.frame(keyframe=True)
    for packet in key + stream.frame(keyframe=False):
        await track.on_packet(packet, True)
    assert [p for _, _, p in port.sent[:len(key)]] == [p.payload for p in key]  # payloads as they came
    assert continuous(port.sent)  # across the publisher's wrap from 65535 to 0, too


async def test_switching_publisher_on_one_m_line_continues_sequence_numbers_and_timestamps() -> None:
    first, second = published([], participant="p1"), published([], participant="p2")
    forwarder, port = subscriber(first)
    a = Stream(seq=100, ts=1000)
    for packet in a.frame(True) + a.frame(False):
        await first.on_packet(packet, True)
    last_seq, last_ts, _ = port.sent[-1]
    switch_at = len(port.sent)
    forwarder.attach(second)  # the first publisher left; its m-line is reused
    b = Stream(seq=40_000, ts=3_000_000_000)
    for packet in b.frame(False) + b.frame(True) + b.frame(False):
        await second.on_packet(packet, True)
        await first.on_packet(a.frame(False)[0], True)  # the old publisher's late packets go nowhere
    assert len(port.sent) > switch_at and continuous(port.sent)
    assert port.sent[switch_at][:2] == ((last_seq + 1) & 0xFFFF, last_ts + 3000)  # one frame later, no jump


async def test_a_publishers_lost_packet_is_waited_for_then_subscribers_restart_at_a_keyframe() -> None:
    clock, plis = Clock(), []
    track = published(plis, clock=clock)
    _, port = subscriber(track)
    stream = Stream(seq=10)
    for packet in stream.frame(True) + stream.frame(False):
        await track.on_packet(packet, True)
    before = len(port.sent)
    lost, *rest = stream.frame(False)
    for packet in rest:  # held behind the hole
        await track.on_packet(packet, True)
    assert len(port.sent) == before
    await track.on_packet(lost, True)  # the retransmission (NACK) fills it: everything goes, in order
    assert len(port.sent) == before + 1 + len(rest) and continuous(port.sent)

    lost, *rest = stream.frame(False)
    for packet in rest:
        await track.on_packet(packet, True)
    clock.now += CONFIG.max_gap_wait_s + 0.01
    requests = track._sfu_counters.keyframe_requests
    later = stream.frame(False)
    for packet in later:  # given up on: no packet of a frame that refers to the lost one is sent
        await track.on_packet(packet, True)
    sent_before_keyframe = len(port.sent)
    assert sent_before_keyframe == before + 1 + len(rest)
    assert track._sfu_counters.keyframe_requests > requests
    key = stream.frame(True)
    for packet in key:
        await track.on_packet(packet, True)
    assert len(port.sent) == sent_before_keyframe + len(key)
    assert continuous(port.sent)  # no hole the subscriber would wait for
    assert track.counters.dropped_frames == 1


async def test_paused_video_sends_nothing_and_resumes_at_a_keyframe_without_a_gap() -> None:
    track = published([])
    forwarder, port = subscriber(track)
    stream = Stream()
    for packet in stream.frame(True):
        await track.on_packet(packet, True)
    forwarder.pause()
    for packet in stream.frame(True) + stream.frame(False):
        await track.on_packet(packet, True)
    paused_count = len(port.sent)
    forwarder.resume()
    for packet in stream.frame(False) + stream.frame(True):
        await track.on_packet(packet, True)
    assert len(port.sent) > paused_count and continuous(port.sent)
    step = (port.sent[paused_count][1] - port.sent[paused_count - 1][1]) & 0xFFFFFFFF
    assert step == 4 * 3000  # the publisher's clock went on during the pause: timestamps follow it


async def test_audio_goes_on_as_it_comes_without_waiting_for_anything() -> None:
    track = published([], kind="audio")
    _, port = subscriber(track, kind="audio")
    packets = [RtpPacket(payload_type=111, sequence_number=s, timestamp=s * 960, payload=b"opus")
               for s in (1, 2, 4, 3, 5)]
    for packet in packets:
        await track.on_packet(packet, False)
    assert len(port.sent) == 5


def test_the_bitrate_cap_is_the_least_subscriber_share_within_the_service_limits() -> None:
    track = published([])
    bandwidths = []
    for estimate in (2_000_000, 700_000, 400_000):
        bandwidth = SubscriberBandwidth(CONFIG)
        bandwidth.video_streams, bandwidth.audio_streams = 1, 1
        bandwidth.on_estimate(estimate, offered_video_bps=0)
        forwarder = TrackForwarder("video", "s", SfuCounters(), bandwidth)
        forwarder.attach(track)
        bandwidths.append(bandwidth)
    assert track.bitrate_cap() == int(400_000 * CONFIG.estimate_headroom) - CONFIG.audio_allowance_bps
    bandwidths[2].on_estimate(20_000, offered_video_bps=0)  # far below: floored, that one is paused instead
    assert track.bitrate_cap() == CONFIG.video_pause_bps
    for bandwidth in bandwidths:
        bandwidth.on_estimate(50_000_000, offered_video_bps=0)
    assert track.bitrate_cap() == CONFIG.max_video_bitrate_bps


def test_video_pauses_on_a_lasting_low_estimate_with_loss_and_comes_back_with_hysteresis_or_a_probe() -> None:
    clock = Clock()
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    lossy = CONFIG.video_pause_loss
    # A publisher sending little shows a low estimate on a perfect link: no pause.
    assert bandwidth.on_estimate(100_000, offered_video_bps=60_000, fraction_lost=lossy) is None
    clock.now += 5
    assert bandwidth.on_estimate(100_000, offered_video_bps=60_000, fraction_lost=lossy) is None
    # Nor while nothing is lost (an estimate still climbing back after a pause).
    assert bandwidth.on_estimate(100_000, offered_video_bps=400_000) is None
    clock.now += 5
    assert bandwidth.on_estimate(100_000, offered_video_bps=400_000) is None
    # More offered than the estimate, and lost, for longer than video_pause_after_s: pause.
    assert bandwidth.on_estimate(100_000, offered_video_bps=400_000, fraction_lost=lossy) is None
    clock.now += CONFIG.video_pause_after_s + 0.01
    assert bandwidth.on_estimate(110_000, offered_video_bps=400_000, fraction_lost=0.3) is True
    assert bandwidth.paused and bandwidth.video_share_bps() is None
    assert bandwidth.on_estimate(CONFIG.video_pause_bps + 10_000, offered_video_bps=400_000) is None  # hysteresis
    assert bandwidth.on_estimate(CONFIG.video_resume_bps, offered_video_bps=400_000) is False
    assert bandwidth.on_estimate(100_000, offered_video_bps=400_000, fraction_lost=lossy) is None
    clock.now += CONFIG.video_pause_after_s + 0.01
    assert bandwidth.on_estimate(100_000, offered_video_bps=400_000, fraction_lost=lossy) is True
    assert bandwidth.probe() is None
    clock.now += CONFIG.video_probe_after_s + 0.01
    assert bandwidth.probe() is False and not bandwidth.paused
    # The probe finds the link still overrun: paused again, and the next probe waits twice as long.
    assert bandwidth.on_estimate(90_000, offered_video_bps=400_000, fraction_lost=lossy) is None
    clock.now += CONFIG.video_pause_after_s + 0.01
    assert bandwidth.on_estimate(90_000, offered_video_bps=400_000, fraction_lost=lossy) is True
    clock.now += CONFIG.video_probe_after_s + 0.01
    assert bandwidth.probe() is None
    clock.now += CONFIG.video_probe_after_s
    assert bandwidth.probe() is False


def test_pausing_can_be_switched_off_and_the_cap_still_applies() -> None:
    clock = Clock()
    bandwidth = SubscriberBandwidth(MediaConfig(pause_video_when_overrun=False), clock=clock)
    bandwidth.video_streams = 1
    for _ in range(10):
        assert bandwidth.on_estimate(50_000, offered_video_bps=400_000, fraction_lost=0.5) is None
        clock.now += 1
    # The cap applies: the REMB's share at most (the lasting loss cuts the loss-based capacity below it).
    share = bandwidth.video_share_bps()
    assert not bandwidth.paused and share is not None and 0 < share <= int(50_000 * MediaConfig().estimate_headroom)


async def test_a_publisher_that_restarts_its_stream_with_a_new_ssrc_and_numbers_is_followed_without_a_jump() -> None:
    for kind in ("video", "audio"):
        track = published([], kind=kind)
        _, port = subscriber(track, kind=kind)
        old, new = Stream(seq=60_000, ts=1000), Stream(seq=12, ts=2_000_000_000)  # 12 is "behind" 60000
        for packet in old.frame(True) + old.frame(False):
            await track.on_packet(packet, kind == "video")
        switch_at = len(port.sent)
        for packet in new.frame(False) + new.frame(True) + new.frame(False):
            packet.ssrc = 4242
            await track.on_packet(packet, kind == "video")
            await track.on_packet(old.frame(False)[0], kind == "video")  # the old stream's late packets: dropped
        assert len(port.sent) > switch_at and continuous(port.sent), kind
        step = (port.sent[switch_at][1] - port.sent[switch_at - 1][1]) & 0xFFFFFFFF
        assert 0 < step <= 3000, kind  # one frame on, not the new stream's random clock
