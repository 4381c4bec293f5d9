"""Chat errors: a stable machine-readable code and a message a citizen or a nurse can act on.

Sent to the client as `{"ok": false, "error": code, "message": text}` in the ack and as an `error` event.
"""

from __future__ import annotations


class ChatError(Exception):
    def __init__(self, code: str, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    def payload(self, event: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {"ok": False, "error": self.code, "message": self.message}
        if event:
            out["event"] = event
        if self.retry_after_s is not None:
            out["retry_after_s"] = self.retry_after_s
        return out


class HistoryShredded(ChatError):
    """The consultation's data key was deleted at the end of the retention period."""

    def __init__(self) -> None:
        super().__init__("history_shredded", "Samtalen er slettet etter endt lagringstid.")
