"""RTP headers on the forwarding path, read and written without aiortc's full `RtpPacket` parse/serialize.

The SFU reads only the fixed header (marker, payload type, sequence number, timestamp, SSRC) and three
header extensions (abs-send-time for the receive-side estimate of a publisher that has no transport-cc,
the transport-wide sequence number, the audio level it passes on); the payload stays an opaque slice.
aiortc's parse builds two `HeaderExtensions` objects, a list of (id, value) tuples and decodes the mid
string on every packet; its serialize goes through the same lists. Both ends here do what the forwarding
path needs and nothing else (RFC 3550 section 5.1, RFC 8285 one- and two-byte extension headers).

`RtpHeader` is an `RtpPacket` (aiortc's statistics, NACK generator and RTX unwrapping take it as one) whose
`extensions` carry only the fields above.
"""

from __future__ import annotations

from struct import Struct

from aiortc.rtp import RtpPacket

_FIXED = Struct("!BBHLL")
_EXTENSION_HEADER = Struct("!HH")
_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE = 0x1000


class RtpExtensionIds:
    """The negotiated ids of the extensions the forwarding path reads (None: not negotiated)."""

    __slots__ = ("abs_send_time", "audio_level", "transport_sequence_number")

    def __init__(self, abs_send_time: int | None = None, audio_level: int | None = None,
                 transport_sequence_number: int | None = None) -> None:
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level
        self.transport_sequence_number = transport_sequence_number


class RtpHeaderExtensions:
    """The subset of aiortc's `HeaderExtensions` the forwarding path reads (same attribute names)."""

    __slots__ = (
        "abs_send_time",
        "audio_level",
        "mid",
        "repaired_rtp_stream_id",
        "rtp_stream_id",
        "transmission_offset",
        "transport_sequence_number",
    )

    def __init__(self) -> None:
        self.abs_send_time: int | None = None
        self.audio_level: tuple[bool, int] | None = None
        self.transport_sequence_number: int | None = None
        self.mid = self.rtp_stream_id = self.repaired_rtp_stream_id = self.transmission_offset = None


_NO_EXTENSIONS = RtpHeaderExtensions()  # shared by packets without any: never written to


class LightRtpPacket(RtpPacket):
    """An `RtpPacket` whose fields are set as given: not `RtpPacket.__init__`, which builds a `HeaderExtensions`
    dataclass per packet. Subclasses say what their `extensions` are."""

    def __init__(self, payload_type: int, marker: int, sequence_number: int, timestamp: int, ssrc: int,
                 payload: bytes, padding_size: int, csrc: list[int]) -> None:
        self.version = 2
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.padding_size = padding_size
        self.csrc = csrc


class RtpHeader(LightRtpPacket):
    """A received RTP packet as the forwarding path sees it; `payload` is everything after the header
    (without padding)."""

    def __init__(self, payload_type: int, marker: int, sequence_number: int, timestamp: int, ssrc: int,
                 payload: bytes, padding_size: int, extensions: RtpHeaderExtensions,
                 csrc: list[int]) -> None:
        LightRtpPacket.__init__(self, payload_type, marker, sequence_number, timestamp, ssrc, payload,
                                padding_size, csrc)
        self.extensions = extensions  # type: ignore[assignment]  # duck-typed subset of HeaderExtensions


def parse_rtp_header(data: bytes, ids: RtpExtensionIds) -> RtpHeader:
    """Parse `data` (one unprotected RTP packet). Raises ValueError where aiortc's parse would."""
    if len(data) < 12:
        raise ValueError("RTP packet length is less than 12 bytes")
    first, m_pt, sequence_number, timestamp, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError("RTP packet has invalid version")
    pos = 12
    csrc: list[int] = []
    cc = first & 0x0F
    if cc:
        if len(data) < 12 + 4 * cc:
            raise ValueError("RTP packet has truncated CSRC")
        csrc = [int.from_bytes(data[12 + 4 * i:16 + 4 * i], "big") for i in range(cc)]
        pos += 4 * cc
    extensions = _NO_EXTENSIONS
    if first & 0x10:
        if len(data) < pos + 4:
            raise ValueError("RTP packet has truncated extension profile / length")
        profile, length = _EXTENSION_HEADER.unpack_from(data, pos)
        pos += 4
        end = pos + 4 * length
        if len(data) < end:
            raise ValueError("RTP packet has truncated extension value")
        extensions = _read_extensions(data, pos, end, profile, ids)
        pos = end
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > len(data) - pos:
            raise ValueError("RTP packet padding length is invalid")
        payload = data[pos:-padding]
    else:
        payload = data[pos:]
    return RtpHeader(m_pt & 0x7F, m_pt >> 7, sequence_number, timestamp, ssrc, payload, padding, extensions, csrc)


def _read_extensions(data: bytes, pos: int, end: int, profile: int, ids: RtpExtensionIds) -> RtpHeaderExtensions:
    extensions = RtpHeaderExtensions()
    one_byte = profile == _ONE_BYTE_PROFILE
    if not one_byte and profile != _TWO_BYTE_PROFILE:
        return extensions  # an unknown profile: aiortc ignores it too
    abs_id, level_id, tsn_id = ids.abs_send_time, ids.audio_level, ids.transport_sequence_number
    while pos < end:
        byte = data[pos]
        if byte == 0:  # padding between elements
            pos += 1
            continue
        if one_byte:
            x_id = byte >> 4
            length = (byte & 0x0F) + 1
            pos += 1
        else:
            if end < pos + 2:
                raise ValueError("RTP two-byte header extension is truncated")
            x_id = byte
            length = data[pos + 1]
            pos += 2
        if end < pos + length:
            raise ValueError("RTP one-byte header extension value is truncated" if one_byte
                             else "RTP two-byte header extension value is truncated")
        if x_id == tsn_id and length >= 2:
            extensions.transport_sequence_number = (data[pos] << 8) | data[pos + 1]
        elif x_id == abs_id and length >= 3:
            extensions.abs_send_time = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
        elif x_id == level_id and length >= 1:
            level = data[pos]
            extensions.audio_level = (level & 0x80 == 0x80, level & 0x7F)
        pos += length
    return extensions


class RtpHeaderWriter:
    """Writes the header of one outgoing stream: its SSRC and payload type, and the one-byte extensions
    the SFU sends (mid, abs-send-time, audio level) with the sender's negotiated ids."""

    def __init__(self, payload_type: int, ssrc: int, mid: str | None, mid_id: int | None,
                 abs_send_time_id: int | None, audio_level_id: int | None) -> None:
        self._payload_type = payload_type
        self._ssrc = ssrc
        # The mid element never changes: encode it once (the one-byte form takes ids 1-14, 1-16 bytes).
        self._mid_element = b""
        if mid and mid_id and 0 < mid_id < 15 and 0 < len(mid.encode()) <= 16:
            self._mid_element = bytes(((mid_id << 4) | (len(mid.encode()) - 1),)) + mid.encode()
        self._abs_id = abs_send_time_id if abs_send_time_id and 0 < abs_send_time_id < 15 else None
        self._level_id = audio_level_id if audio_level_id and 0 < audio_level_id < 15 else None

    def write(self, marker: int, sequence_number: int, timestamp: int, payload: bytes, padding_size: int,
              abs_send_time: int | None, audio_level: tuple[bool, int] | None) -> bytes:
        elements = self._mid_element
        if abs_send_time is not None and self._abs_id is not None:
            elements += bytes(((self._abs_id << 4) | 2, (abs_send_time >> 16) & 0xFF,
                               (abs_send_time >> 8) & 0xFF, abs_send_time & 0xFF))
        if audio_level is not None and self._level_id is not None:
            elements += bytes(((self._level_id << 4), (0x80 if audio_level[0] else 0) | (audio_level[1] & 0x7F)))
        first = 0x80
        if padding_size:
            first |= 0x20
        header = b""
        if elements:
            first |= 0x10
            elements += b"\x00" * (-len(elements) % 4)
            header = _EXTENSION_HEADER.pack(_ONE_BYTE_PROFILE, len(elements) >> 2) + elements
        data = _FIXED.pack(first, (marker << 7) | self._payload_type, sequence_number, timestamp, self._ssrc) \
            + header + payload
        if padding_size:
            data += b"\x00" * (padding_size - 1) + bytes((padding_size,))
        return data
