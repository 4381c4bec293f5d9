import asyncio

import pytest
from aiortc.codecs import h264_depayload, vp8_depayload

from media.keyframes import KeyframeRequester
from media.payload import MAX_PAYLOAD, EncodedFrame, H264Packer, Vp8Packer, is_keyframe


def test_vp8_packing_keeps_the_frame_bytes_and_marks_the_first_packet() -> None:
    data = bytes([0x10]) + bytes(range(256)) * 20  # P bit 0: a keyframe
    payloads = Vp8Packer().pack(EncodedFrame(data, 0, True))
    assert len(payloads) == -(-len(data) // MAX_PAYLOAD)
    assert payloads[0][0] & 0x10 and not payloads[1][0] & 0x10
    assert b"".join(vp8_depayload(p) for p in payloads) == data
    assert is_keyframe("video/VP8", data) and not is_keyframe("video/VP8", b"\x11")


def test_h264_packing_round_trips_through_aiortcs_depayloader() -> None:
    sps, idr = b"\x67" + b"\x01" * 10, b"\x65" + bytes(range(256)) * 12
    stream = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + idr
    payloads = H264Packer().pack(EncodedFrame(stream, 0, True))
    assert payloads[0] == sps and len(payloads) > 2  # single NAL, then FU-A fragments
    assert b"".join(h264_depayload(p) for p in payloads) == stream
    assert is_keyframe("video/H264", stream)
    assert not is_keyframe("video/H264", b"\x00\x00\x00\x01\x41\x00")


async def test_keyframe_requests_are_rate_limited_and_a_late_request_is_deferred_not_lost() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def send_pli() -> bool:
        sent.append(loop.time())
        return True

    requester = KeyframeRequester(send_pli, min_interval_s=0.2)
    for _ in range(10):
        requester.request()
    await asyncio.sleep(0.05)
    assert len(sent) == 1
    requester.request()
    await asyncio.sleep(0.3)
    assert len(sent) == 2 and sent[1] - sent[0] == pytest.approx(0.2, abs=0.05)
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
