import asyncio

from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from media.keyframes import KeyframeRequester
from media.rtp import h264_keyframe_start, keyframe_start_detector, vp8_keyframe_start


def test_a_vp8_keyframe_starts_at_the_first_packet_of_a_key_frame_whatever_the_descriptor_carries() -> None:
    key = bytes([0x10]) + bytes(3000)  # VP8 payload header: P bit 0
    delta = bytes([0x11]) + bytes(3000)
    for picture_id in (5, 300):  # 7- and 15-bit picture ids: descriptors of 3 and 4 bytes
        first, *rest = Vp8Encoder._packetize(key, picture_id)
        assert vp8_keyframe_start(first) and not any(vp8_keyframe_start(p) for p in rest)
        assert not any(vp8_keyframe_start(p) for p in Vp8Encoder._packetize(delta, picture_id))
    # A browser's descriptor with TL0PICIDX and TID (L, T bits) before the VP8 header.
    assert vp8_keyframe_start(bytes([0x90, 0xE0, 0x80, 0x01, 0x02, 0x40, 0x10]))
    assert not vp8_keyframe_start(bytes([0x90, 0xE0, 0x80, 0x01, 0x02, 0x40, 0x11]))
    assert not vp8_keyframe_start(b"") and not vp8_keyframe_start(b"\x90")


def test_an_h264_keyframe_starts_at_sps_or_idr_single_stap_a_or_fu_a_start() -> None:
    sps, pps, idr, slice_ = b"\x67" + bytes(10), b"\x68" + bytes(4), b"\x65" + bytes(5000), b"\x41" + bytes(5000)
    payloads = H264Encoder._packetize([sps, pps, idr])  # STAP-A with SPS and PPS, then FU-A fragments
    assert h264_keyframe_start(payloads[0]) and not any(h264_keyframe_start(p) for p in payloads[2:])
    assert h264_keyframe_start(H264Encoder._packetize([idr])[0])  # FU-A start of an IDR slice
    assert not any(h264_keyframe_start(p) for p in H264Encoder._packetize([slice_]))
    assert h264_keyframe_start(sps) and not h264_keyframe_start(pps) and not h264_keyframe_start(b"")
    assert keyframe_start_detector("audio/opus")(b"anything")


async def test_keyframe_requests_are_rate_limited_and_a_late_request_is_deferred_not_lost() -> None:
    sent: list[float] = []
    second = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def send_pli() -> bool:
        sent.append(loop.time())
        if len(sent) == 2:
            second.set()
        return True

    requester = KeyframeRequester(send_pli, min_interval_s=0.2)
    first_asked = loop.time()
    for _ in range(10):  # the first goes at once, the other nine inside its interval make one deferred PLI
        requester.request()
    await asyncio.wait_for(second.wait(), 10)
    # A lower bound only (the interval is the spec); how late the deferred one comes is the machine's business.
    assert sent[1] - first_asked >= 0.2 - 1e-6
    await asyncio.sleep(0.3)  # nothing is pending, so waiting longer on a busy machine cannot change this
    assert len(sent) == 2
    requester.close()


def test_the_forwarding_jitter_buffer_releases_a_video_frame_at_its_marker_bit_and_waits_for_gaps() -> None:
    from aiortc.rtp import RtpPacket

    from media.aiortc_passthrough import _ForwardingJitterBuffer

    def packet(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=ts, marker=int(marker))
        p._data = data
        return p

    buffer = _ForwardingJitterBuffer(64, is_video=True)
    assert buffer.add(packet(10, 3000, False, b"a"))[1] is None
    frame = buffer.add(packet(11, 3000, True, b"b"))[1]
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000  # no wait for the next frame
    assert buffer.add(packet(13, 6000, True, b"d"))[1] is None  # 12 is missing
    frame = buffer.add(packet(12, 6000, False, b"c"))[1]  # the retransmission fills the gap
    assert frame is not None and frame.data == b"cd"
    audio = _ForwardingJitterBuffer(16, is_video=False)
    assert audio.add(packet(1, 960, False, b"opus"))[1].data == b"opus"


def test_a_packet_missing_for_too_long_is_given_up_on_with_a_keyframe_request() -> None:
    from aiortc.rtp import RtpPacket

    from media.aiortc_passthrough import MAX_GAP_WAIT_S, _ForwardingJitterBuffer

    def packet(seq: int, ts: int, marker: bool) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=ts, marker=int(marker))
        p._data = b"x"
        return p

    now = [0.0]
    gaps: list[int] = []
    buffer = _ForwardingJitterBuffer(512, is_video=True, on_gap=lambda: gaps.append(1), clock=lambda: now[0])
    assert buffer.add(packet(100, 0, True))[1] is not None
    # 101 (the first of frame 1, two packets) is lost and never retransmitted; frames 2, 3, ... follow.
    results = []
    for i, seq in enumerate(range(102, 130)):
        now[0] = i * 0.033
        results.append(buffer.add(packet(seq, 3000 * (i + 1), True)))
        if now[0] >= MAX_GAP_WAIT_S[True]:
            break
    assert all(frame is None for _, frame in results[:-1])  # waiting for the retransmission
    pli, frame = results[-1]
    assert pli and gaps == [1] and frame is not None and frame.timestamp == 6000  # resumes at frame 2
    assert buffer.add(packet(seq + 1, 999_000, True))[1] is not None
    # A late packet from before the skipped gap changes nothing.
    assert buffer.add(packet(101, 3000, False)) == (False, None)
