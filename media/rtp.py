"""What the forwarding path reads in an RTP payload without depayloading it: does a keyframe start here?

A new subscriber (or one whose video was paused, or behind a publisher's lost packet) can only start
decoding at a keyframe, so its forwarder drops video until the first packet of one.
"""

from __future__ import annotations

from collections.abc import Callable


def vp8_keyframe_start(payload: bytes) -> bool:
    """RFC 7741: the payload descriptor's S bit and partition index 0 mark a frame's first packet, and the
    P bit of the VP8 payload header right after the descriptor is 0 on a key frame."""
    if not payload:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S=0 (continuation) or PID != 0
        return False
    offset = 1
    if first & 0x80:  # X: extension byte
        if len(payload) < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture ID, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    return len(payload) > offset and not payload[offset] & 0x01


def h264_keyframe_start(payload: bytes) -> bool:
    """RFC 6184: an SPS (7) or IDR slice (5) as a single NAL unit, inside a STAP-A (24), or at the start
    of an FU-A (28). Browsers send SPS and PPS just before every IDR picture."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A: [size:16][NAL]...
        offset = 1
        while offset + 2 < len(payload):
            size = int.from_bytes(payload[offset:offset + 2], "big")
            if payload[offset + 2] & 0x1F in (5, 7):
                return True
            offset += 2 + size
        return False
    if nal_type == 28 and len(payload) > 1:  # FU-A: start bit and the fragmented NAL's type
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def keyframe_start_detector(mime_type: str) -> Callable[[bytes], bool]:
    mime = mime_type.lower()
    if mime == "video/vp8":
        return vp8_keyframe_start
    if mime == "video/h264":
        return h264_keyframe_start
    return lambda payload: True  # audio: every packet stands alone
