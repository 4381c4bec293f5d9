"""The one exception type of the media layer; the signaling adapter turns it into an `error` event."""

from __future__ import annotations


class MediaError(Exception):
    """Bad input or a state the client caused; `code` is stable and machine-readable, `message` is for people.

    Codes: `sdp_too_large`, `sdp_invalid`, `no_offer_outstanding`, `offer_collision`, `codec_unsupported`,
    `candidate_invalid`, `too_many_candidates`, `participant_left`, `consultation_ended`, `room_full`
    (see `media/__init__.py`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_event(self) -> dict[str, str]:
        """The signaling `error` event for this error."""
        return {"type": "error", "code": self.code, "message": self.message}
