"""Transport-cc feedback (media.twcc): checked against the draft's packet format with a reference parser
written here from draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1 (itself checked on pion/rtcp's
captured messages), against a libwebrtc-encoded message byte for byte, and against aiortc's RTCP framing."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

import pytest
from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket

from media.twcc import RTCP_RTPFB_TWCC, TransportFeedback, encode_feedback


@dataclass
class Feedback:
    sender_ssrc: int
    media_ssrc: int
    base: int
    reference_time: int  # in 64 ms units
    count: int
    arrivals: dict[int, int | None]  # 16-bit sequence number -> µs after reference_time * 64 ms, None: lost


def parse(data: bytes) -> Feedback:
    """Reference parser: the draft's layout read field by field (not media.twcc's code)."""
    first, packet_type, length = struct.unpack("!BBH", data[:4])
    assert first >> 6 == 2 and first & 0x1F == 15 and packet_type == 205
    assert len(data) == 4 * (length + 1)
    sender, media, base, status_count, ref_and_count = struct.unpack("!LLHHL", data[4:20])
    pos = 20
    symbols: list[int] = []
    while len(symbols) < status_count:
        (chunk,) = struct.unpack("!H", data[pos:pos + 2])
        pos += 2
        if not chunk & 0x8000:  # run length: 2-bit symbol, 13-bit length
            symbols += [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
        elif not chunk & 0x4000:  # status vector, 14 one-bit symbols
            symbols += [(chunk >> (13 - i)) & 0x1 for i in range(14)]
        else:  # status vector, 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * i)) & 0x3 for i in range(7)]
    symbols = symbols[:status_count]
    arrivals: dict[int, int | None] = {}
    at = 0
    for i, symbol in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if symbol == 0:
            arrivals[seq] = None
            continue
        assert symbol in (1, 2), "reserved symbol"
        if symbol == 1:
            delta = data[pos]
            pos += 1
        else:
            (delta,) = struct.unpack("!h", data[pos:pos + 2])
            pos += 2
        at += delta * 250
        arrivals[seq] = at
    trailing = len(data) - pos
    assert 0 <= trailing < 4  # at most the padding to a 32-bit boundary
    if trailing:  # padding: zeros, the last byte their count with the P bit set
        assert first & 0x20 and data[-1] == trailing and not any(data[pos:-1])
    return Feedback(sender, media, base, ref_and_count >> 8, ref_and_count & 0xFF, arrivals)


PION_EXAMPLE_3 = bytes([0xaf, 0xcd, 0x0, 0x7, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8, 0xbb, 0x1, 0x74, 0x0, 0x6,
                        0x45, 0xb1, 0x5a, 0x40, 0x40, 0x2, 0x20, 0x04, 0x1f, 0xfe, 0x1f, 0x9a, 0xd0, 0x0, 0xd0, 0x0])
PION_EXAMPLE_6 = bytes([0xaf, 0xcd, 0x0, 0x7, 0x9b, 0x74, 0xf6, 0x1f, 0x93, 0x71, 0xdc, 0xbc, 0x85, 0x3c, 0x0, 0x9,
                        0x63, 0xf9, 0x16, 0xb3, 0xd5, 0x52, 0x0, 0x30, 0x9b, 0xaa, 0x6a, 0xaa, 0x7b, 0x1, 0x9, 0x1])
# libwebrtc-style: 7 packets received 19, 9, 9, 4, 3, 3, 4 ms apart (pion/rtcp transport_layer_cc_test.go).
LIBWEBRTC_EXAMPLE = bytes([0xaf, 0xcd, 0x0, 0x7, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8, 0xbb, 0x0, 0x4, 0x0, 0x7,
                           0x10, 0x63, 0x6e, 0x1, 0x20, 0x7, 0x4c, 0x24, 0x24, 0x10, 0xc, 0xc, 0x10, 0x0, 0x0, 0x3])


def test_the_reference_parser_reads_messages_captured_from_other_implementations() -> None:
    three = parse(PION_EXAMPLE_3)
    assert (three.sender_ssrc, three.media_ssrc, three.base, three.reference_time, three.count) == (
        4195875351, 423483579, 372, 4567386, 64)
    assert list(three.arrivals.values()) == [2047500, 4070000, 4122000, 4122000, 4174000, 4174000]
    six = parse(PION_EXAMPLE_6)
    assert (six.base, six.reference_time, six.count) == (34108, 6551830, 179)
    assert list(six.arrivals.values()) == [38750, 81250, 107750, 150250, 181000, None, 247250, None, None]


def test_a_message_is_byte_for_byte_what_libwebrtc_sends() -> None:
    reference_us = 1074030 * 64_000
    arrivals, at = [], reference_us
    for gap_ms in (19, 9, 9, 4, 3, 3, 4):
        at += gap_ms * 1000
        arrivals.append(at)
    assert encode_feedback(4195875351, 423483579, 4, arrivals, 1) == LIBWEBRTC_EXAMPLE


def _check_round_trip(base: int, arrivals: list[int | None], count: int = 7) -> None:
    data = encode_feedback(0x11223344, 0x55667788, base, arrivals, count)
    parsed = parse(data)
    assert (parsed.sender_ssrc, parsed.media_ssrc, parsed.base, parsed.count) == (
        0x11223344, 0x55667788, base & 0xFFFF, count)
    reference_us = parsed.reference_time * 64_000
    first = next(a for a in arrivals if a is not None)
    assert parsed.reference_time == (first // 64_000) & 0xFFFFFF
    assert len(parsed.arrivals) == len(arrivals)
    for i, expected in enumerate(arrivals):
        got = parsed.arrivals[(base + i) & 0xFFFF]
        if expected is None:
            assert got is None
        else:
            # 250 µs ticks, rounded to the nearest, without the rounding errors adding up
            assert got is not None and abs(reference_us + got - expected) <= 125, (i, expected, got)
    if not data[0] & 0x20:
        # aiortc reads the RTCP framing and the SSRCs as a generic RTP feedback message (with the P bit, as
        # libwebrtc pads, aiortc's generic parser refuses any RTPFB whose padded body is not whole words)
        (packet,) = RtcpPacket.parse(data)
        assert isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_TWCC
        assert (packet.ssrc, packet.media_ssrc) == (0x11223344, 0x55667788)


@pytest.mark.parametrize("seed", range(40))
def test_random_arrivals_losses_reordering_and_long_gaps_come_back_as_sent(seed: int) -> None:
    rng = random.Random(seed)
    at = rng.randrange(10**12)
    arrivals: list[int | None] = []
    for i in range(rng.randrange(1, 400)):
        roll = rng.random()
        if i and roll < 0.1:
            arrivals.append(None)
            continue
        if roll < 0.15:
            at += rng.randrange(64_000, 3_000_000)  # a long gap: a large (two-byte) delta
        elif roll < 0.2:
            at -= rng.randrange(0, 20_000)  # arrived before the one sent earlier: a negative delta
        else:
            at += rng.randrange(0, 20_000)
        arrivals.append(at)
    if arrivals[0] is None:
        arrivals[0] = at
    _check_round_trip(rng.randrange(0x10000), arrivals)


def test_chunk_kinds_runs_one_bit_and_two_bit_vectors() -> None:
    at = 5 * 64_000
    _check_round_trip(65530, [at + 1000 * i for i in range(20)])  # one run, across the wrap of 65535
    _check_round_trip(10, [at, None, at + 2000, None, at + 4000, None, None, at + 9000] * 3)  # one-bit vectors
    _check_round_trip(10, [at, at + 100_000, None, at + 100_500, at + 50_000, None, at + 60_000] * 2)  # two-bit
    _check_round_trip(10, [at] + [None] * 9000 + [at + 5000])  # a run of lost packets longer than 8191


def test_refuses_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_feedback(1, 2, 0, [None, None], 0)
    with pytest.raises(ValueError):
        encode_feedback(1, 2, 0, [0, 9_000_000], 0)  # 9 s between two arrivals: over a two-byte delta


def test_recorder_reports_every_number_once_in_order_and_losses_between_reports() -> None:
    feedback = TransportFeedback(interval_s=0.1)
    now = 1_000_000_000
    assert not feedback.due(now)  # nothing recorded
    for seq in (65533, 65534, 65535, 0, 2, 1):  # across the wrap, 1 after 2
        now += 3000
        feedback.record(seq, now)
    assert feedback.due(now)
    (first,) = feedback.take_feedback(9, 8, now)
    assert not feedback.due(now + 1000)  # the next report waits for the interval
    parsed = parse(first)
    assert parsed.base == 65533 and all(v is not None for v in parsed.arrivals.values())
    assert list(parsed.arrivals) == [65533, 65534, 65535, 0, 1, 2]
    feedback.record(1, now + 1000)  # a duplicate of one already reported: not reported again
    for seq in (5, 6):  # 3 and 4 lost
        feedback.record(seq, now + 2000)
    (second,) = feedback.take_feedback(9, 8, now + 200_000)
    parsed = parse(second)
    assert parsed.base == 3 and parsed.count == 1
    assert [parsed.arrivals[s] is None for s in (3, 4, 5, 6)] == [True, True, False, False]
    assert feedback.take_feedback(9, 8, now + 400_000) == []


def test_recorder_splits_a_report_at_a_gap_too_long_for_one_message() -> None:
    feedback = TransportFeedback()
    feedback.record(100, 0)
    feedback.record(101, 10_000_000)  # 10 s later (the sender was silent): beyond a two-byte delta
    messages = feedback.take_feedback(1, 2, 10_000_000)
    assert [parse(m).base for m in messages] == [100, 101]
    assert [parse(m).count for m in messages] == [0, 1]


def test_recorder_restarts_after_a_jump_in_numbering() -> None:
    feedback = TransportFeedback()
    feedback.record(10, 1000)
    feedback.take_feedback(1, 2, 1000)
    feedback.record(30_000, 2000)  # a restarted sender: not 29,989 packets reported lost
    (message,) = feedback.take_feedback(1, 2, 200_000)
    assert parse(message).base == 30_000 and len(parse(message).arrivals) == 1
