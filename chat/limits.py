"""Sizes and rates the chat accepts. Defaults suit a consultation; the composition root may override."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Quotas:
    """Attachment bytes one participant, one consultation, one tenant and all tenants together may store
    (until the retention shred gives them back). A refusal comes before anything is stored."""

    participant_bytes: int = 30 * MIB
    consultation_bytes: int = 60 * MIB
    tenant_bytes: int = 2048 * MIB
    global_bytes: int = 6144 * MIB


@dataclass(frozen=True, slots=True)
class ChatLimits:
    max_text_chars: int = 4000
    max_client_id_chars: int = 64
    messages_per_window: int = 30  # per participant and consultation, counted in Redis (all processes)
    window_s: int = 10
    max_attachment_bytes: int = 5 * MIB
    quotas: Quotas = Quotas()
    max_history: int = 1000  # messages per history/join answer; `more` says when there are more
    typing_min_interval_s: float = 0.3
    data_key_cache_s: float = 60.0  # how long a process may keep an unwrapped data key after a shred

    @property
    def max_packet_bytes(self) -> int:
        """Engine.IO frame limit: room for an oversize attachment to be refused politely, not by a cut."""
        return 2 * self.max_attachment_bytes + 64 * 1024
