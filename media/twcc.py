"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01): the
receiving end of a publisher's send-side bandwidth estimation.

A browser that negotiated transport-cc numbers every packet it sends on the transport (audio and video)
with a transport-wide sequence number and estimates its uplink itself from our reports of when each one
arrived. So per packet the SFU only records (sequence number, arrival time); every `interval_s` (~100 ms,
as libwebrtc's receiver) it sends one RTCP transport feedback message (RTPFB, FMT 15) with the arrivals
since the last one. That replaces aiortc's receive-side estimator (an inter-arrival filter per packet in
Python) for such publishers; the subscribers' cap still reaches them as REMB (see `media.bandwidth`).

`encode_feedback` writes the message as libwebrtc does (its chunk choice, 250 µs delta ticks rounded to
the nearest, reference time in 64 ms units, padding with the P bit), so Chrome and Firefox read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from struct import Struct

RTCP_RTPFB = 205
RTCP_RTPFB_TWCC = 15
DELTA_TICK_US = 250
REFERENCE_TICK_US = 64_000
MAX_STATUS_COUNT = 0xFFFF
# Packets received after the message that covered their number went out are not reported again, and a
# jump in numbering larger than this starts the next report afresh (a restarted sender).
MAX_GAP = 0x1000

NOT_RECEIVED, SMALL_DELTA, LARGE_DELTA = 0, 1, 2

_HEADER = Struct("!BBHLLHHL")


class _Chunks:
    """libwebrtc's `TransportFeedback::LastChunk`: packs status symbols into 16-bit chunks."""

    def __init__(self) -> None:
        self.out: list[int] = []
        self._symbols: list[int] = []
        self._all_same = True
        self._has_large = False

    def add(self, symbol: int) -> None:
        if not self._can_add(symbol):
            self._emit()
        symbols = self._symbols
        if symbols and symbol != symbols[0]:
            self._all_same = False
        symbols.append(symbol)
        self._has_large = self._has_large or symbol == LARGE_DELTA

    def _can_add(self, symbol: int) -> bool:
        size = len(self._symbols)
        if size < 7:
            return True
        if size < 14 and not self._has_large and symbol != LARGE_DELTA:
            return True
        return size < 0x1FFF and self._all_same and self._symbols[0] == symbol

    def _emit(self) -> None:
        symbols = self._symbols
        if self._all_same:
            self.out.append(_run_length(symbols[0], len(symbols)))
            self._reset([])
        elif len(symbols) == 7:
            self.out.append(_two_bit(symbols))
            self._reset([])
        elif len(symbols) == 14:
            self.out.append(_one_bit(symbols))
            self._reset([])
        else:  # 8-13 symbols with a large delta among them: 7 go out, the rest start the next chunk
            self.out.append(_two_bit(symbols[:7]))
            self._reset(symbols[7:])

    def _reset(self, symbols: list[int]) -> None:
        self._symbols = []
        self._all_same, self._has_large = True, False
        for symbol in symbols:
            self.add(symbol)

    def finish(self) -> list[int]:
        symbols = self._symbols
        if symbols:
            if self._all_same:
                self.out.append(_run_length(symbols[0], len(symbols)))
            elif len(symbols) <= 7:
                self.out.append(_two_bit(symbols))
            else:
                self.out.append(_one_bit(symbols))
        return self.out


def _run_length(symbol: int, count: int) -> int:
    return (symbol << 13) | count


def _two_bit(symbols: Sequence[int]) -> int:
    chunk = 0xC000
    for i, symbol in enumerate(symbols):
        chunk |= symbol << (12 - 2 * i)
    return chunk


def _one_bit(symbols: Sequence[int]) -> int:
    chunk = 0x8000
    for i, symbol in enumerate(symbols):
        chunk |= symbol << (13 - i)
    return chunk


def encode_feedback(sender_ssrc: int, media_ssrc: int, base_sequence: int, arrivals: Sequence[int | None],
                    feedback_count: int) -> bytes:
    """One transport-cc feedback message. `arrivals[i]` is when packet `base_sequence + i` arrived (µs on
    any monotonic clock) or None if it did not; at least one must have arrived (the reference time is
    the first arrival's), and consecutive arrivals must be within ±8.19 s (the caller splits otherwise)."""
    if not 0 < len(arrivals) <= MAX_STATUS_COUNT:
        raise ValueError("a transport-cc feedback reports 1 to 65535 packets")
    first = next((a for a in arrivals if a is not None), None)
    if first is None:
        raise ValueError("a transport-cc feedback needs at least one packet that arrived")
    reference = first // REFERENCE_TICK_US
    last = reference * REFERENCE_TICK_US
    chunks = _Chunks()
    deltas = bytearray()
    for arrival in arrivals:
        if arrival is None:
            chunks.add(NOT_RECEIVED)
            continue
        diff = arrival - last
        ticks = (diff + DELTA_TICK_US // 2) // DELTA_TICK_US if diff >= 0 else -((-diff + DELTA_TICK_US // 2)
                                                                                  // DELTA_TICK_US)
        if 0 <= ticks <= 0xFF:
            chunks.add(SMALL_DELTA)
            deltas.append(ticks)
        elif -0x8000 <= ticks <= 0x7FFF:
            chunks.add(LARGE_DELTA)
            deltas += (ticks & 0xFFFF).to_bytes(2, "big")
        else:
            raise ValueError("arrival times more than 8.19 s apart in one transport-cc feedback")
        last += ticks * DELTA_TICK_US  # as libwebrtc: rounding errors do not add up
    body = b"".join(c.to_bytes(2, "big") for c in chunks.finish()) + bytes(deltas)
    padding = -len(body) % 4
    if padding:
        body += b"\x00" * (padding - 1) + bytes((padding,))
    length = (16 + len(body)) // 4  # in 32-bit words minus one: the 4-byte RTCP header is not counted
    return _HEADER.pack(0x80 | (0x20 if padding else 0) | RTCP_RTPFB_TWCC, RTCP_RTPFB, length, sender_ssrc,
                        media_ssrc, base_sequence & 0xFFFF, len(arrivals),
                        ((reference & 0xFFFFFF) << 8) | (feedback_count & 0xFF)) + body


class TransportFeedback:
    """Arrivals on one transport (BUNDLE: every m-line of a peer connection), reported every `interval_s`.

    `record` is the per-packet part (a list append); `due(now_us)` says a report should go out and
    `take_feedback` builds it (or several, for long gaps)."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval_us = int(interval_s * 1e6)
        self._pending: list[tuple[int, int]] = []  # (16-bit transport sequence number, arrival µs)
        self._next_at = 0
        self._next_sequence: int | None = None  # unwrapped: the first number the next report covers
        self._last_unwrapped: int | None = None
        self._count = 0

    def record(self, sequence: int, arrival_us: int) -> None:
        self._pending.append((sequence, arrival_us))

    def due(self, now_us: int) -> bool:
        return bool(self._pending) and now_us >= self._next_at

    def take_feedback(self, sender_ssrc: int, media_ssrc: int, now_us: int) -> list[bytes]:
        """The feedback messages for everything recorded since the last ones (usually one). Each message
        starts where the previous one ended, so a packet lost in between is reported as not received."""
        self._next_at = now_us + self._interval_us
        pending, self._pending = self._pending, []
        arrivals: dict[int, int] = {}
        for sequence, arrival in pending:
            unwrapped = self._unwrap(sequence)
            if self._next_sequence is None or unwrapped >= self._next_sequence:
                arrivals.setdefault(unwrapped, arrival)
        if not arrivals:
            return []
        numbers = sorted(arrivals)
        start = self._next_sequence
        if start is None or numbers[0] - start > MAX_GAP:
            start = numbers[0]
        messages = []
        i = 0
        while i < len(numbers):
            span: list[int | None] = []
            previous = 0
            while i < len(numbers):
                number, arrival = numbers[i], arrivals[numbers[i]]
                if span and (number - start >= MAX_STATUS_COUNT or number - start - len(span) > MAX_GAP
                             or abs(arrival - previous) > 8_000_000):
                    break  # the rest goes into the next message
                span.extend([None] * (number - start - len(span)))
                span.append(arrival)
                previous = arrival
                i += 1
            messages.append(encode_feedback(sender_ssrc, media_ssrc, start, span, self._count))
            self._count += 1
            start += len(span)
            if i < len(numbers) and numbers[i] - start > MAX_GAP:
                start = numbers[i]
        self._next_sequence = start
        return messages

    def _unwrap(self, sequence: int) -> int:
        last = self._last_unwrapped
        if last is None:
            unwrapped = sequence
        else:
            delta = (sequence - last) & 0xFFFF
            unwrapped = last + delta if delta < 0x8000 else last + delta - 0x10000
        if last is None or unwrapped > last:
            self._last_unwrapped = unwrapped
        return unwrapped
