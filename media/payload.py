"""RTP payload formats, packing side: split an encoded frame into RTP payloads without touching its content.

The receive side is aiortc's own depayloader and jitter buffer (see `aiortc_passthrough`), so what arrives
here is one complete encoded frame as the publisher's encoder produced it.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Leaves room for the RTP header, header extensions and SRTP tag inside a 1280-byte IPv6 minimum MTU.
MAX_PAYLOAD = 1100


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame (VP8/H264) or packet (Opus), as it came from the publisher."""

    data: bytes
    timestamp: int  # RTP clock units, origin at the publisher's first frame
    keyframe: bool


def is_keyframe(mime_type: str, data: bytes) -> bool:
    mime = mime_type.lower()
    if mime == "video/vp8":
        # VP8 payload header (RFC 7741 §4.3): P bit 0 = key frame.
        return bool(data) and not (data[0] & 0x01)
    if mime == "video/h264":
        return any(nal and nal[0] & 0x1F in (5, 7) for nal in split_annexb(data))
    return True  # audio: every packet stands alone


class Vp8Packer:
    """RFC 7741 packetization with a 15-bit picture ID per frame."""

    def __init__(self) -> None:
        self._picture_id = random.randint(0, 0x7FFF)

    def pack(self, frame: EncodedFrame) -> list[bytes]:
        payloads = []
        data = frame.data
        pid = struct.pack("!H", 0x8000 | self._picture_id)
        for start in range(0, max(len(data), 1), MAX_PAYLOAD):
            # X=1 (extension present), S=1 on the first packet, partition 0; I=1 (picture ID present).
            descriptor = bytes([0x90 if start == 0 else 0x80, 0x80]) + pid
            payloads.append(descriptor + data[start:start + MAX_PAYLOAD])
        self._picture_id = (self._picture_id + 1) & 0x7FFF
        return payloads


class OpusPacker:
    def pack(self, frame: EncodedFrame) -> list[bytes]:
        return [frame.data]


def split_annexb(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        start += 3
        end = data.find(b"\x00\x00\x01", start)
        nal = data[start:end] if end != -1 else data[start:]
        yield nal.rstrip(b"\x00") if end != -1 else nal
        start = end


class H264Packer:
    """RFC 6184 packetization mode 1: single NAL unit packets, FU-A for large NAL units."""

    def pack(self, frame: EncodedFrame) -> list[bytes]:
        payloads: list[bytes] = []
        for nal in split_annexb(frame.data):
            if not nal:
                continue
            if len(nal) <= MAX_PAYLOAD:
                payloads.append(nal)
                continue
            indicator = (nal[0] & 0xE0) | 28
            nal_type = nal[0] & 0x1F
            body = nal[1:]
            chunks = [body[i:i + MAX_PAYLOAD] for i in range(0, len(body), MAX_PAYLOAD)]
            for i, chunk in enumerate(chunks):
                header = nal_type | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
                payloads.append(bytes([indicator, header]) + chunk)
        return payloads


def packer_for(mime_type: str) -> Vp8Packer | OpusPacker | H264Packer:
    mime = mime_type.lower()
    if mime == "video/vp8":
        return Vp8Packer()
    if mime == "video/h264":
        return H264Packer()
    if mime == "audio/opus":
        return OpusPacker()
    raise ValueError(f"no pass-through packer for {mime_type}")
