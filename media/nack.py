"""Which of a publisher's packets are missing, for RTCP NACK: aiortc's `NackGenerator`, without its per-packet
cost.

aiortc's generator walks its whole set of missing sequence numbers with `uint16_gt` on every packet (to drop
those too old to ask for), even when nothing is missing. This one keeps the same state and answers (the
same `missing` set, the same return value from `add`) but does nothing beyond moving `max_seq` for a packet
in order with nothing missing, and looks at the set only when the newest number moves.
"""

from __future__ import annotations

from typing import Protocol

from aiortc.rtp import RTP_HISTORY_SIZE


class _Numbered(Protocol):
    sequence_number: int


class NackGenerator:
    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.missing: set[int] = set()

    def add(self, packet: _Numbered) -> bool:
        """Mark a packet received; True if it revealed newly missing packets (a NACK is due)."""
        seq = packet.sequence_number
        max_seq = self.max_seq
        if max_seq is None:
            self.max_seq = seq
            return False
        ahead = (seq - max_seq) & 0xFFFF
        if not 0 < ahead < 0x8000:  # not newer than the newest: a retransmission, late or duplicate packet
            self.missing.discard(seq)
            return False
        self.max_seq = seq
        missing = self.missing
        missed = ahead > 1
        if missed:
            # Only the last RTP_HISTORY_SIZE numbers are worth asking for (aiortc adds all, then truncates).
            for back in range(1, min(ahead, RTP_HISTORY_SIZE + 1)):
                missing.add((seq - back) & 0xFFFF)
        if missing:
            oldest = (seq - RTP_HISTORY_SIZE) & 0xFFFF
            stale = [s for s in missing if 0 < (oldest - s) & 0xFFFF < 0x8000]
            missing.difference_update(stale)
        return missed
