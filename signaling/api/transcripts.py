"""Chat transcripts for the patient record (EPJ) and chat attachments, over HTTP.

- GET .../transcript?format=json|text|pdf : the whole conversation with participants, times and outcome;
  only an admitted host (clinician, nurse, operator) of the consultation; audited (transcript.exported).
  The PDF is rendered in a worker thread (never on the event loop), and only up to a size cap (413 beyond).
- GET .../attachments/{attachment_id} : the image, to admitted participants only; audited (attachment.read).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from chat import transcript
from chat.errors import ChatError
from rooms.audit import Action
from rooms.models import ParticipantState, Principal

from ..appkeys import STORE
from ..chat_wiring import CHAT
from ..http import Access, Api, ApiError
from .consultations import load

api = Api()
FORMATS = {"json", "text", "pdf"}


class TranscriptSenderOut(BaseModel):
    participant_id: str
    role: str
    display_name: str


class TranscriptMessageOut(BaseModel):
    id: str
    ts: str
    sender: TranscriptSenderOut
    text: str
    attachment: dict[str, Any] | None = None


class TranscriptParticipantOut(BaseModel):
    id: str
    role: str
    display_name: str
    state: str
    joined_at: str | None


class TranscriptOut(BaseModel):
    consultation_id: str
    tenant: str
    service: str
    channel: str
    state: str
    outcome: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    participants: list[TranscriptParticipantOut]
    messages: list[TranscriptMessageOut]
    reads: dict[str, str]
    exported_at: str
    exported_by: dict[str, str]


def _http_error(e: ChatError) -> ApiError:
    status = {"history_shredded": 410, "attachment_not_found": 404}.get(e.code, 409)
    return ApiError(status, e.code, e.message)


@api.route("GET", "/api/v1/consultations/{consultation_id}/transcript",
           summary="The chat transcript for the patient record (format=json, text or pdf); admitted hosts only",
           response=TranscriptOut, errors=(401, 403, 404, 410, 413, 422), tags=("chat",), scoped=True,
           access=Access.HOST,
           query={"format": "json (default), text (text/plain; charset=utf-8) or pdf (application/pdf)"})
async def export_transcript(request: web.Request, principal: Principal, _b: None) -> Any:
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(422, "invalid_format", "format må være json, text eller pdf.")
    c = await load(request, principal, host=True)
    chat, store = request.app[CHAT], request.app[STORE]
    try:
        messages = await chat.messages.all(principal.tenant, c.id)
    except ChatError as e:
        raise _http_error(e) from None
    reads = await chat.messages.reads(principal.tenant, c.id)
    me = c.participant_for(principal.subject)
    t = transcript.build(c, messages, reads, now=time.time(),
                         exported_by={"participant_id": me.id if me else "", "role": principal.role.value})
    if fmt == "pdf" and not transcript.fits_pdf(t):
        raise ApiError(413, "transcript_too_large",
                       "Samtalen er for lang til PDF. Hent den som tekst (format=text) eller JSON.")
    await store.audit.record(principal.tenant, Action.TRANSCRIPT_EXPORTED, actor=principal.subject,
                             role=principal.role, consultation_id=c.id, format=fmt)
    headers = {"Cache-Control": "no-store"}
    if fmt == "text":
        return web.Response(text=transcript.as_text(t), content_type="text/plain", charset="utf-8",
                            headers=headers)
    if fmt == "pdf":
        pdf = await asyncio.to_thread(transcript.as_pdf, t)  # seconds of CPU for a long chat: off the loop
        return web.Response(body=pdf, content_type="application/pdf",
                            headers={**headers, "Content-Disposition": f'inline; filename="chat-{c.id}.pdf"'})
    return web.json_response(t, headers=headers)


@api.route("GET", "/api/v1/consultations/{consultation_id}/attachments/{attachment_id}",
           summary="A chat attachment (image/jpeg or image/png); admitted participants only",
           errors=(401, 403, 404, 410), tags=("chat",), scoped=True, access=Access.PARTICIPANT)
async def get_attachment(request: web.Request, principal: Principal, _b: None) -> web.Response:
    c = await load(request, principal)
    me = c.participant_for(principal.subject)
    if me is None or me.state != ParticipantState.ADMITTED:
        raise ApiError(403, "not_admitted", "Du er ikke sluppet inn i denne konsultasjonen.")
    try:
        att = await request.app[CHAT].attachments.get(principal.tenant, c.id, request.match_info["attachment_id"])
    except ChatError as e:
        raise _http_error(e) from None
    await request.app[STORE].audit.record(principal.tenant, Action.ATTACHMENT_READ, actor=principal.subject,
                                          role=principal.role, consultation_id=c.id, attachment_id=att.id)
    ext = "png" if att.content_type == "image/png" else "jpg"
    return web.Response(body=att.data, content_type=att.content_type,
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Disposition": f'attachment; filename="{att.id}.{ext}"'})
