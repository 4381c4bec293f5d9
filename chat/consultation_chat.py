"""The chat of a consultation: join (with history), leave, message, attachment, history, typing, read.

Who may join is checked against the store on every `join` (admitted participants only; a session or invite
principal only in its own consultation; the principal's tenant only); every later event needs that join on
this connection. A message is acked only once stored (and replicated), then announced by id
(consultation_events.py). Nothing here logs message text or names.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from rooms.audit import Action
from rooms.errors import DomainError
from rooms.models import ParticipantState

from .attachments import safe_name
from .consultation_events import ConsultationEvents
from .context import ChatContext
from .errors import ChatError
from .messages import Sender
from .session import HOST_ROLES, ID, Handler, Session, consultation_room, cursor, host_room, ident


class ConsultationChat:
    def __init__(self, ctx: ChatContext, events: ConsultationEvents) -> None:
        self._ctx = ctx
        self._events = events

    def handlers(self) -> dict[str, Handler]:
        return {"join": self.join, "leave": self.leave, "message": self.message, "attachment": self.attachment,
                "history": self.history, "typing": self.typing, "read": self.read}

    async def join(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        ctx = self._ctx
        cid = ident(d, "consultation_id")
        after = cursor(d, "after_id")
        p = s.principal
        not_found = ChatError("consultation_not_found", "Fant ikke denne konsultasjonen.")
        if p.consultation_id and p.consultation_id != cid:
            raise not_found
        try:
            c = await ctx.store.consultations.get(p.tenant, cid)  # the principal's tenant only
        except DomainError:
            raise not_found from None
        me = c.participant_for(p.subject)
        if me is None:
            raise not_found
        if me.state != ParticipantState.ADMITTED:
            raise ChatError("not_admitted", "Du venter på å bli sluppet inn i konsultasjonen.")
        history, more = await ctx.chat.messages.history(p.tenant, cid, after, since=me.history_from)
        reads = await ctx.chat.messages.reads(p.tenant, cid)
        first = cid not in s.joined
        s.joined[cid] = me
        await ctx.sio.enter_room(sid, consultation_room(p.tenant, cid))
        if p.role in HOST_ROLES:
            await ctx.sio.enter_room(sid, host_room(p.tenant, cid))
        if first:
            self._events.watch(p.tenant, cid)
            await ctx.store.audit.record(p.tenant, Action.TRANSCRIPT_READ, actor=p.subject, role=p.role,
                                         consultation_id=cid, channel="chat")
        return {"consultation_id": cid, "participant_id": me.id, "state": c.state.value,
                "outcome": c.outcome.value if c.outcome else None,
                "participants": [x.public() for x in c.participants if x.state == ParticipantState.ADMITTED],
                "history": [m.public() for m in history], "more": more, "reads": reads,
                "session_token": s.session_token}

    async def leave(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = ident(d, "consultation_id")
        if s.joined.pop(cid, None) is not None:
            await self._ctx.sio.leave_room(sid, consultation_room(s.principal.tenant, cid))
            await self._ctx.sio.leave_room(sid, host_room(s.principal.tenant, cid))
            self._events.unwatch(s.principal.tenant, cid)
        return {}

    def left(self, s: Session) -> None:
        """The connection closed: its joins end with it."""
        for cid in list(s.joined):
            self._events.unwatch(s.principal.tenant, cid)

    # --- messages and attachments -----------------------------------------------------------------

    def _text(self, d: dict[str, Any], required: bool = True) -> str:
        limit = self._ctx.limits.max_text_chars
        text = d.get("text", None if required else "")
        if not isinstance(text, str):
            raise ChatError("invalid_event", "Feltet text må være tekst.")
        if len(text) > limit:
            raise ChatError("text_too_long", f"Meldingen er for lang (høyst {limit} tegn).")
        if required and not text.strip():
            raise ChatError("text_empty", "Meldingen er tom.")
        return text

    def _client_id(self, d: dict[str, Any]) -> str:
        v = d.get("client_id")
        if not isinstance(v, str) or not ID.match(v) or len(v) > self._ctx.limits.max_client_id_chars:
            raise ChatError("invalid_event", "Feltet client_id mangler eller er ugyldig (1-64 tegn A-Z, 0-9, _ -).")
        return v

    async def message(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        ctx = self._ctx
        cid = ident(d, "consultation_id")
        client_id = self._client_id(d)
        text = self._text(d)
        me = s.me(cid)
        sender = Sender(me.id, me.role.value, me.display_name)
        async with s.sending:
            await ctx.store.durability.admit()  # REDIS_MIN_REPLICAS_ACK: too few replicas, refused unstored
            stored = await ctx.chat.messages.append(s.principal.tenant, cid, sender, client_id, text)
            await ctx.store.durable()  # acked (and broadcast) only once the replicas have it
            if stored.created:
                ctx.counters.messages += 1
                await self._events.announce_message(s.principal.tenant, cid, stored.id, skip_sid=sid)
        return {"id": stored.id, "ts": stored.ts, "duplicate": not stored.created}

    async def attachment(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = ident(d, "consultation_id")
        client_id = self._client_id(d)
        caption = self._text(d, required=False)
        me = s.me(cid)
        sender = Sender(me.id, me.role.value, me.display_name)
        content_type = self._ctx.chat.attachments.check(d.get("data"))
        async with s.sending:
            return await self._store_attachment(sid, s.principal.tenant, cid, sender, client_id, caption, d,
                                                content_type)

    async def _store_attachment(self, sid: str, tenant: str, cid: str, sender: Sender, client_id: str,
                                caption: str, d: dict[str, Any], content_type: str) -> dict[str, Any]:
        ctx = self._ctx
        att, messages = ctx.chat.attachments, ctx.chat.messages
        earlier = await messages.previous(tenant, cid, sender.participant_id, client_id)
        if earlier is not None:  # a retry of an upload already stored: answer it, store nothing
            first = await messages.one(tenant, cid, earlier.id)
            return {"id": earlier.id, "ts": earlier.ts, "duplicate": True,
                    "attachment": first.attachment if first else None}
        await ctx.store.durability.admit()
        aid, size = await att.put(tenant, cid, bytes(d["data"]), content_type, owner=sender.participant_id)
        meta = {"id": aid, "content_type": content_type, "size": size,
                "name": safe_name(d.get("name"), content_type)}
        try:
            stored = await messages.append(tenant, cid, sender, client_id, caption, attachment=meta)
        except Exception:
            with contextlib.suppress(Exception):
                await att.discard(tenant, cid, aid, owner=sender.participant_id)
            raise
        await ctx.store.durable()  # the attachment and its message, before the ack and the broadcast
        if not stored.created:  # a retry: the first upload is the one kept
            await att.discard(tenant, cid, aid, owner=sender.participant_id)
            first = await messages.one(tenant, cid, stored.id)
            return {"id": stored.id, "ts": stored.ts, "duplicate": True,
                    "attachment": first.attachment if first else None}
        ctx.counters.attachments += 1
        await self._events.announce_message(tenant, cid, stored.id, skip_sid=sid)
        return {"id": stored.id, "ts": stored.ts, "duplicate": False, "attachment": meta}

    # --- history, typing, read receipts ------------------------------------------------------------

    async def history(self, _sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = ident(d, "consultation_id")
        after = cursor(d, "after_id")
        limit = d.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ChatError("invalid_event", "Feltet limit må være et positivt heltall.")
        me = s.me(cid)
        messages, more = await self._ctx.chat.messages.history(s.principal.tenant, cid, after, limit,
                                                               since=me.history_from)
        return {"consultation_id": cid, "messages": [m.public() for m in messages], "more": more}

    async def typing(self, sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = ident(d, "consultation_id")
        typing = d.get("typing", True)
        if not isinstance(typing, bool):
            raise ChatError("invalid_event", "Feltet typing må være true eller false.")
        me = s.me(cid)
        now = time.monotonic()
        if typing and now - s.last_typing < self._ctx.limits.typing_min_interval_s:
            return {"sent": False}
        s.last_typing = now
        await self._ctx.broadcast(s.principal.tenant, cid, "typing", {
            "consultation_id": cid, "participant_id": me.id, "role": me.role.value, "typing": typing}, skip_sid=sid)
        return {"sent": True}

    async def read(self, _sid: str, s: Session, d: dict[str, Any]) -> dict[str, Any]:
        cid = ident(d, "consultation_id")
        up_to = cursor(d, "up_to_id", required=True)
        me = s.me(cid)
        assert up_to is not None
        moved = await self._ctx.chat.messages.mark_read(s.principal.tenant, cid, me.id, up_to)
        if moved:
            await self._ctx.broadcast(s.principal.tenant, cid, "read", {
                "consultation_id": cid, "participant_id": me.id, "role": me.role.value, "up_to_id": moved})
        return {"up_to_id": moved}
