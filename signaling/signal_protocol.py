"""The signaling socket's wire rules (docs/protocol.md): limits, close codes, reading one frame, and the
errors that end a session."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType

from .http import parse_json

HELLO_TIMEOUT_S = 10.0
MAX_FRAME_BYTES = 256 * 1024
RATE_BURST = 60  # messages; trickle ICE sends a burst of candidates at the start
RATE_PER_S = 10.0

# Close codes: 4400 bad request, 4401 unauthenticated, 4403 refused, 4404 unknown consultation,
# 4408 a server offer went unanswered, 4409 replaced by a newer connection, 4410 consultation ended,
# 4421 media lives on another node (reconnect to the `signal_url` in the error), 4429 too many messages.
CLOSE_BAD, CLOSE_AUTH, CLOSE_REFUSED, CLOSE_UNKNOWN = 4400, 4401, 4403, 4404
CLOSE_ANSWER_TIMEOUT, CLOSE_REPLACED, CLOSE_ENDED, CLOSE_RATE, CLOSE_WRONG_NODE = 4408, 4409, 4410, 4429, 4421
CLOSE_UNAVAILABLE = 4503  # Redis away (a failover) or too few replicas: connect again after retry_after_s


class Done(Exception):
    """The session ended normally before the message loop (e.g. redirected to another node)."""


class Fatal(Exception):
    """Say `code` to the client, then close with `close_code`."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


@dataclass
class Bucket:
    """Token bucket for incoming messages."""

    tokens: float = RATE_BURST
    at: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.at) * RATE_PER_S)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def parse(msg: Any) -> dict[str, Any] | None:
    """One frame as a message `{"type": str, ...}`; None when it is not one. A closing socket or a binary frame
    ends the session."""
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        raise Fatal("closed", "Tilkoblingen ble lukket.", WSCloseCode.OK)
    if msg.type != WSMsgType.TEXT:
        raise Fatal("text_expected", "Bare JSON-tekstmeldinger støttes.", CLOSE_BAD)
    data = parse_json(msg.data)  # None for bad JSON, deep nesting or lone surrogates
    return data if isinstance(data, dict) and isinstance(data.get("type"), str) else None
