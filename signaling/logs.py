"""Log output: one JSON object per line (production default) or human-readable text.

A JSON line holds `ts` (UTC, ISO 8601), `level`, `logger`, `event` (the message) and only the ids a record
carries in `extra=` from `ID_FIELDS`: tenant, consultation, participant, ticket, service, error code ... never
a subject (a citizen's subject may be a national id), a name, message text, a reason or a phone number. Any
other `extra` key is dropped, and an exception is logged as its type and stack frames, not its message (which
could quote input). What the message itself says is the caller's responsibility: no personal data in logs
(tests/api/test_privacy_logs.py runs a whole flow through this formatter).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["json", "text"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ID_FIELDS = frozenset({
    "tenant", "service", "consultation_id", "participant_id", "ticket_id", "attachment_id", "node", "code",
    "status", "method", "route", "entries", "problems", "count", "duration_s", "worker", "port",
})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in ID_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["stack"] = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(record.exc_info[2])]
        return json.dumps(out, ensure_ascii=False, default=str)


def default_format(production: bool) -> LogFormat:
    """NETTLEGE_LOG_FORMAT when set, else JSON in production and text elsewhere."""
    chosen = os.environ.get("NETTLEGE_LOG_FORMAT", "")
    if chosen in ("json", "text"):
        return chosen  # type: ignore[return-value]  # `in` does not narrow a str to the LogFormat literal
    return "json" if production else "text"


def setup_logging(fmt: LogFormat, level: str = "INFO") -> None:
    """Configure the root logger once for a served process (never at import, never in tests)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
