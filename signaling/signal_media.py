"""The media negotiation relay: once admitted, the participant's `media.Peer` in the consultation's room, and the
client's offers, answers, candidates and media state passed to it. The peer sends its answers and offers itself;
when one of its offers goes unanswered (the peer's answer watchdog), this socket closes with 4408 so the client
reconnects with a fresh peer connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import Peer

from .appkeys import CONFIG, STORE
from .signal_keys import SFU
from .signal_protocol import CLOSE_ANSWER_TIMEOUT

if TYPE_CHECKING:
    from .signal_session import SignalSession

KINDS = ("offer", "answer", "candidate", "media_state")  # what the client sends the relay


class MediaRelay:
    def __init__(self, session: SignalSession) -> None:
        self._s = session
        self.peer: Peer | None = None

    async def enter_room(self) -> None:
        s = self._s
        if self.peer is not None:
            return
        assert s.principal and s.participant_id
        room = s.app[SFU].room(s.cid, max_video_bitrate_bps=await self._service_video_cap())
        self.peer = await room.join(s.participant_id, s.principal.role.value, s.principal.name, s.send)
        self.peer.watch_answers(s.app[CONFIG].signal_answer_timeout_s, self._answer_overdue)
        await s.app[STORE].rooms.entered_room(s.principal, s.cid, len(room.participants()))

    async def _service_video_cap(self) -> int | None:
        """The consultation's service's cap on what a publisher sends, if its tenant config sets one."""
        s = self._s
        assert s.principal
        tenant = s.app[CONFIG].tenant(s.principal.tenant)
        if tenant is None or not any(service.max_video_bitrate_bps for service in tenant.services):
            return None  # no cap configured: no need to read which service this is
        consultation = await s.app[STORE].consultations.get(s.principal.tenant, s.cid)
        service = tenant.service(consultation.service)
        return service.max_video_bitrate_bps if service is not None else None

    async def _answer_overdue(self) -> None:
        """A client that never answers a server offer would block every later renegotiation (the server never
        has two offers outstanding): close it, so it reconnects with a fresh peer connection."""
        s = self._s
        if s.ws.closed:
            return
        await s.error("answer_timeout", "Svaret på serverens tilbud kom ikke i tide; kobler til på nytt.")
        await s.ws.close(code=CLOSE_ANSWER_TIMEOUT, message=b"answer_timeout")

    async def handle(self, data: dict[str, Any]) -> None:
        """One of KINDS from the client (MediaError for what the peer refuses)."""
        s = self._s
        kind = data["type"]
        if self.peer is None:
            await s.error("not_admitted", "Du er ikke sluppet inn ennå.")
            return
        if kind == "media_state":  # the client muted or switched its camera off: shown on its tile
            audio_off, video_off = data.get("audio_off"), data.get("video_off")
            if not isinstance(audio_off, bool) or not isinstance(video_off, bool):
                await s.error("bad_media_state", "audio_off og video_off må være true eller false.")
                return
            await s.app[SFU].room(s.cid).set_media_off(s.participant_id or "", audio=audio_off, video=video_off)
            return
        if kind == "candidate":
            candidate = data.get("candidate")
            if candidate is not None and not isinstance(candidate, dict):
                await s.error("bad_candidate", "candidate må være et objekt eller null.")
                return
            await self.peer.add_candidate(candidate)
            return
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            await s.error("bad_sdp", "sdp mangler.")
            return
        if kind == "offer":
            labels = data.get("track_labels")
            labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None
            await self.peer.handle_offer(sdp, labels)  # the peer sends the answer itself
        else:
            await self.peer.handle_answer(sdp)
