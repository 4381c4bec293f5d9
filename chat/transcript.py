"""The transcript of a consultation's chat for the patient record (EPJ): JSON, plain text and PDF.

Participants, times (UTC in JSON, Europe/Oslo in text and PDF) and the outcome, then every message in
order. Attachments are listed by name, type and size (the images themselves are fetched separately).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from rooms.models import Consultation

from .messages import Message

OSLO = ZoneInfo("Europe/Oslo")
# A PDF is rendered in pure Python (~1 s per few thousand lines on one core): longer chats are exported as text
# or JSON instead, so one export cannot occupy a render thread for minutes.
PDF_MAX_MESSAGES = 5000
PDF_MAX_CHARS = 1_000_000
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
ROLE_NO = {"citizen": "innbygger", "clinician": "behandler", "nurse": "sykepleier", "operator": "operatør",
           "interpreter": "tolk", "relative": "pårørende", "admin": "administrator", "booking": "booking"}
OUTCOME_NO = {"resolved": "avklart", "physical-followup": "fysisk oppfølging", "referred": "henvist",
              "emergency": "akutt", "no-show": "møtte ikke"}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def _local(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, OSLO).strftime("%d.%m.%Y %H:%M:%S") if ts else "-"


def build(c: Consultation, messages: list[Message], reads: dict[str, str], *, exported_by: dict[str, str],
          now: float) -> dict[str, Any]:
    names = {p.id: p.display_name for p in c.participants}
    return {
        "consultation_id": c.id,
        "tenant": c.tenant,
        "service": c.service,
        "channel": c.channel.value,
        "state": c.state.value,
        "outcome": c.outcome.value if c.outcome else None,
        "created_at": _iso(c.created_at),
        "started_at": _iso(c.started_at),
        "ended_at": _iso(c.ended_at),
        "participants": [{"id": p.id, "role": p.role.value, "display_name": p.display_name, "state": p.state.value,
                          "joined_at": _iso(p.joined_at)} for p in c.participants],
        "messages": [{"id": m.id, "ts": _iso(m.ts), "sender": {**m.sender.public(),
                                                               "display_name": names.get(m.sender.participant_id,
                                                                                         m.sender.display_name)},
                      "text": m.text, **({"attachment": m.attachment} if m.attachment else {})} for m in messages],
        "reads": reads,
        "exported_at": _iso(now),
        "exported_by": exported_by,
    }


def _iso_local(value: str | None) -> str:
    if not value:
        return "-"
    return _local(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def as_text(t: dict[str, Any]) -> str:
    lines = [
        "Chat-logg fra konsultasjon / Chat transcript",
        f"Konsultasjon: {t['consultation_id']}   Kommune: {t['tenant']}   Tjeneste: {t['service']}",
        f"Opprettet: {_iso_local(t['created_at'])}   Startet: {_iso_local(t['started_at'])}   "
        f"Avsluttet: {_iso_local(t['ended_at'])}",
        f"Utfall: {OUTCOME_NO.get(t['outcome'] or '', t['outcome'] or 'ikke avsluttet')}",
        f"Eksportert: {_iso_local(t['exported_at'])} (tid i Europe/Oslo)",
        "",
        "Deltakere:",
    ]
    for p in t["participants"]:
        lines.append(f"  - {p['display_name'] or '(uten navn)'} ({ROLE_NO.get(p['role'], p['role'])}), "
                     f"{p['state']}, fra {_iso_local(p['joined_at'])}")
    lines += ["", "Meldinger:"]
    if not t["messages"]:
        lines.append("  (ingen meldinger)")
    for m in t["messages"]:
        who = m["sender"]["display_name"] or m["sender"]["participant_id"]
        role = ROLE_NO.get(m["sender"]["role"], m["sender"]["role"])
        head = f"[{_iso_local(m['ts'])}] {who} ({role}):"
        body = m["text"]
        if m.get("attachment"):
            a = m["attachment"]
            body = (body + " " if body else "") + f"[vedlegg: {a.get('name')}, {a['content_type']}, {a['size']} byte]"
        lines.append(head)
        lines += ["    " + line for line in (body.splitlines() or [""])]
    return "\n".join(lines) + "\n"


def _font_path() -> Path | None:
    for d in FONT_DIRS:
        if (d / "DejaVuSans.ttf").exists():
            return d / "DejaVuSans.ttf"
    return None


def fits_pdf(t: dict[str, Any]) -> bool:
    """Whether a transcript is small enough to render as PDF (see PDF_MAX_MESSAGES, PDF_MAX_CHARS)."""
    messages = t["messages"]
    return len(messages) <= PDF_MAX_MESSAGES and sum(len(m["text"]) for m in messages) <= PDF_MAX_CHARS


def as_pdf(t: dict[str, Any]) -> bytes:
    """A4 PDF of the text transcript. DejaVu Sans when installed (all of Unicode the text needs);
    otherwise Helvetica with Latin-1 (æ, ø, å still print; other characters become '?').

    CPU-bound and blocking: call it off the event loop (the HTTP route runs it in a worker thread)."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Chat-logg {t['consultation_id']}")
    pdf.set_creator("nettlege")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    font = _font_path()
    text = as_text(t)
    if font is not None:
        pdf.add_font("DejaVu", "", str(font))
        pdf.set_font("DejaVu", size=10)
    else:
        pdf.set_font("Helvetica", size=10)
        text = text.encode("latin-1", "replace").decode("latin-1")
    for line in text.splitlines():
        pdf.multi_cell(0, 5, line or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
