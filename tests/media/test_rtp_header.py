"""The forwarding path's header-only RTP parse and header writer (media.rtp_header) and its NACK generator
(media.nack) give what aiortc's full parse/serialize and `NackGenerator` give, on random packets and
sequences."""

from __future__ import annotations

import random

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import NackGenerator as AiortcNackGenerator
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.nack import NackGenerator
from media.rtp_header import RtpExtensionIds, RtpHeaderWriter, parse_rtp_header

MID, ABS, LEVEL, TSN = 1, 3, 4, 5
URIS = {
    MID: "urn:ietf:params:rtp-hdrext:sdes:mid",
    ABS: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    LEVEL: "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    TSN: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
}


def _aiortc_map() -> HeaderExtensionsMap:
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in URIS.items()]))
    return extensions_map


IDS = RtpExtensionIds(abs_send_time=ABS, audio_level=LEVEL, transport_sequence_number=TSN)


def _random_packet(rng: random.Random) -> bytes:
    packet = RtpPacket(payload_type=rng.randrange(128), marker=rng.randrange(2),
                       sequence_number=rng.randrange(0x10000), timestamp=rng.randrange(2**32),
                       ssrc=rng.randrange(2**32), payload=rng.randbytes(rng.randrange(0, 1200)))
    packet.csrc = [rng.randrange(2**32) for _ in range(rng.choice((0, 0, 0, 1, 3)))]
    extensions = packet.extensions
    if rng.random() < 0.7:
        extensions.mid = str(rng.randrange(100))
    if rng.random() < 0.7:
        extensions.abs_send_time = rng.randrange(2**24)
    if rng.random() < 0.5:
        extensions.audio_level = (bool(rng.randrange(2)), rng.randrange(128))
    if rng.random() < 0.7:
        extensions.transport_sequence_number = rng.randrange(0x10000)
    if rng.random() < 0.2:
        packet.padding_size = rng.randrange(1, 256)
    return packet.serialize(_aiortc_map())


@pytest.mark.parametrize("seed", range(120))
def test_header_parse_reads_what_aiortc_reads(seed: int) -> None:
    rng = random.Random(seed)
    data = _random_packet(rng)
    if seed % 3 == 0:  # the two-byte extension form (RFC 8285), as a sender with ids > 14 writes it
        data = _two_byte_form(data)
    ours = parse_rtp_header(data, IDS)
    theirs = RtpPacket.parse(data, _aiortc_map())
    for name in ("payload_type", "marker", "sequence_number", "timestamp", "ssrc", "payload", "padding_size",
                 "csrc"):
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in ("abs_send_time", "audio_level", "transport_sequence_number"):
        assert getattr(ours.extensions, name) == getattr(theirs.extensions, name), name


def _two_byte_form(data: bytes) -> bytes:
    """The same packet with its one-byte extension elements rewritten in the two-byte form."""
    if not data[0] & 0x10:
        return data
    cc = data[0] & 0x0F
    pos = 12 + 4 * cc
    length = int.from_bytes(data[pos + 2:pos + 4], "big") * 4
    block = data[pos + 4:pos + 4 + length]
    out = b""
    i = 0
    while i < len(block):
        if block[i] == 0:
            i += 1
            continue
        x_id, x_len = block[i] >> 4, (block[i] & 0x0F) + 1
        out += bytes((x_id, x_len)) + block[i + 1:i + 1 + x_len]
        i += 1 + x_len
    out += b"\x00" * (-len(out) % 4)
    return data[:pos] + (0x1000).to_bytes(2, "big") + (len(out) // 4).to_bytes(2, "big") + out \
        + data[pos + 4 + length:]


@pytest.mark.parametrize("data", [
    b"\x80\x60\x00",  # shorter than the fixed header
    b"\x40\x60" + b"\x00" * 10,  # version 1
    b"\x83\x60" + b"\x00" * 10,  # three CSRCs announced, none there
    b"\x90\x60" + b"\x00" * 10 + b"\xbe\xde",  # extension header cut short
    b"\x90\x60" + b"\x00" * 10 + b"\xbe\xde\x00\x02\x10\x00",  # extension block cut short
    b"\xa0\x60" + b"\x00" * 10 + b"\x00\x00\x05",  # padding longer than the packet
    b"\x90\x60" + b"\x00" * 10 + b"\xbe\xde\x00\x01\x1f\x00\x00\x00",  # element longer than its block
])
def test_header_parse_refuses_what_aiortc_refuses(data: bytes) -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(data, _aiortc_map())
    with pytest.raises(ValueError):
        parse_rtp_header(data, IDS)


@pytest.mark.parametrize("seed", range(100))
def test_header_writer_writes_what_aiortc_serializes(seed: int) -> None:
    rng = random.Random(seed)
    mid = rng.choice((None, "0", "1", "17", "video-camera"))
    writer = RtpHeaderWriter(payload_type=rng.randrange(96, 128), ssrc=rng.randrange(2**32), mid=mid,
                             mid_id=MID, abs_send_time_id=ABS, audio_level_id=LEVEL)
    marker, seq, ts = rng.randrange(2), rng.randrange(0x10000), rng.randrange(2**32)
    payload = rng.randbytes(rng.randrange(1, 1200))
    abs_send_time = rng.choice((None, rng.randrange(2**24)))
    level = rng.choice((None, (bool(rng.randrange(2)), rng.randrange(128))))
    padding = rng.choice((0, 0, 0, rng.randrange(1, 256)))
    data = writer.write(marker, seq, ts, payload, padding, abs_send_time, level)
    expected = RtpPacket(payload_type=writer._payload_type, marker=marker, sequence_number=seq, timestamp=ts,
                         ssrc=writer._ssrc, payload=payload)
    expected.extensions.mid = mid
    expected.extensions.abs_send_time = abs_send_time
    expected.extensions.audio_level = level
    expected.padding_size = padding
    serialized = expected.serialize(_aiortc_map())
    if padding:  # aiortc pads with random bytes, the writer with zeros: compare all but those
        assert data[:-padding] == serialized[:-padding] and data[-1] == serialized[-1] == padding
        assert RtpPacket.parse(data, _aiortc_map()).payload == payload
    else:
        assert data == serialized


def _nack_sequences(rng: random.Random) -> list[int]:
    seq = rng.randrange(0x10000)
    out = []
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.05:
            seq += rng.randrange(2, 40)  # a burst lost
        elif roll < 0.07:
            out.append((seq - rng.randrange(1, 200)) & 0xFFFF)  # a retransmission or a late packet
            continue
        elif roll < 0.075:
            seq += rng.choice((300, 5000, 0x7FFF, 0x8000, 0x9000))  # jumps, forward and (mod 2^16) back
        else:
            seq += 1
        seq &= 0xFFFF
        out.append(seq)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_nack_generator_keeps_aiortcs_state_and_answers(seed: int) -> None:
    rng = random.Random(seed)
    ours, theirs = NackGenerator(), AiortcNackGenerator()
    for seq in _nack_sequences(rng):
        packet = RtpPacket(sequence_number=seq)
        assert ours.add(packet) == theirs.add(packet), seq
        assert ours.missing == theirs.missing and ours.max_seq == theirs.max_seq, seq
