"""Structured logs: one JSON object per line (ts, level, logger, event, ids) and no personal data."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

from signaling.logs import JsonFormatter, default_format
from tests.conftest import bearer, dev_token

NAME, NATIONAL_ID, REASON, PHONE = "Kari Hemmelignavn", "01019012345", "hemmelig-plage", "+47 987 65 432"


def _record(msg: str, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("signaling.test", logging.WARNING, __file__, 1, msg, None,
                               (type(exc), exc, exc.__traceback__) if exc else None)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_ids_only():
    line = JsonFormatter().format(_record("ticket taken", tenant="oslo", ticket_id="t_1", consultation_id="c_1",
                                          subject=NATIONAL_ID, display_name=NAME, text=REASON))
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "signaling.test" and out["event"] == "ticket taken"
    assert out["ts"].endswith("Z") and out["tenant"] == "oslo" and out["ticket_id"] == "t_1"
    assert out["consultation_id"] == "c_1"
    for secret in (NAME, NATIONAL_ID, REASON):
        assert secret not in line


def test_an_exception_is_logged_by_type_and_frames_not_its_message():
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError as exc:
        line = JsonFormatter().format(_record("failed", exc))
    out = json.loads(line)
    assert out["exc_type"] == "ValueError" and out["stack"] and PHONE not in line


def test_json_is_the_default_in_production(monkeypatch):
    monkeypatch.delenv("NETTLEGE_LOG_FORMAT", raising=False)
    assert default_format(True) == "json" and default_format(False) == "text"
    monkeypatch.setenv("NETTLEGE_LOG_FORMAT", "json")
    assert default_format(False) == "json"


def test_serve_with_log_format_json_writes_json_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETTLEGE_", "REDIS_"))}
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--log-format", "json", "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    lines: list[dict] = []
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # the start-up warnings (generated dev secrets, embedded store), as they come
            lines.append(json.loads(raw))
            if sum("generated a development value" in x["event"] for x in lines) >= 2:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    assert all({"ts", "level", "logger", "event"} <= set(x) for x in lines)
    assert any(x["logger"] == "signaling.config" and x["level"] == "WARNING" for x in lines)


async def test_a_whole_flow_in_json_lines_holds_no_patient_data(app_client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        citizen = await dev_token(app_client, NATIONAL_ID, "citizen", name=NAME)
        doctor = await dev_token(app_client, "hpr-1", "clinician")
        q = "/api/v1/tenants/oslo/services/nettlege/queue"
        await app_client.post(q, json={"channel": "phone", "reason": REASON, "callback_phone": PHONE},
                              headers=bearer(citizen))
        await app_client.post(q, json={"channel": "video", "reason": REASON * 50, "x": NAME}, headers=bearer(citizen))
        taken = await (await app_client.post(f"{q}/take", headers=bearer(doctor))).json()
        cid = taken["consultation_id"]
        await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(citizen))
        await app_client.post(f"/api/v1/consultations/{cid}/end", json={"outcome": "resolved"},
                              headers=bearer(doctor))
        logging.getLogger("signaling.test").warning("flow done", extra={"tenant": "oslo", "consultation_id": cid})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines and all({"ts", "level", "logger", "event"} <= set(x) for x in lines)
    assert lines[-1]["consultation_id"] == cid
    for secret in (NAME, NATIONAL_ID, REASON, PHONE, "987 65 432"):
        assert secret not in text, secret
