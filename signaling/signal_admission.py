"""Who this socket is and whether they may be in the room: `hello` (authentication), `welcome`, the lobby until a
clinician decides, and the consultation's events for this socket (admitted, denied, ended, knock)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType

from media import MediaError
from media.ice import turn_rest_credentials
from rooms.errors import Forbidden, Gone, NotFound, RateLimited
from rooms.events import ConsultationEnded, Event, Knocked, ParticipantDecided, Resync, consultation_topic
from rooms.models import ConsultationState, ParticipantState, Role

from .appkeys import AUTH, CONFIG, HUB, STORE
from .auth import AuthError
from .config import Config
from .identity import identify
from .messages import preferred
from .placement import NODE
from .signal_protocol import (
    CLOSE_AUTH,
    CLOSE_BAD,
    CLOSE_ENDED,
    CLOSE_RATE,
    CLOSE_REFUSED,
    CLOSE_UNKNOWN,
    CLOSE_WRONG_NODE,
    HELLO_TIMEOUT_S,
    Done,
    Fatal,
    parse,
)

if TYPE_CHECKING:
    from .signal_session import SignalSession


def ice_servers_for(config: Config, user: str) -> list[dict[str, Any]]:
    """The RTCIceServer list handed to one participant in `welcome` (`[]` in the embedded default)."""
    servers = [s.model_dump(exclude_none=True) for s in config.ice_servers]
    if config.turn is not None:
        username, credential = turn_rest_credentials(config.turn.secret, user, config.turn.ttl_s)
        servers.append({"urls": list(config.turn.urls), "username": username, "credential": credential})
    return servers


class Admission:
    def __init__(self, session: SignalSession) -> None:
        self._s = session
        self._events: asyncio.Task[None] | None = None

    async def hello(self) -> None:
        s = self._s
        app = s.app
        try:
            msg = await s.ws.receive(timeout=HELLO_TIMEOUT_S)
            while msg.type in (WSMsgType.PING, WSMsgType.PONG):  # autoping is off
                if msg.type == WSMsgType.PING:
                    await s.ws.pong(msg.data)
                msg = await s.ws.receive(timeout=HELLO_TIMEOUT_S)
        except TimeoutError:
            raise Fatal("hello_timeout", "Fikk ikke hello i tide.", CLOSE_BAD) from None
        hello = parse(msg)
        if hello is None or hello.get("type") != "hello" or not isinstance(hello.get("token"), str):
            raise Fatal("hello_expected", "Første melding må være hello med token.", CLOSE_BAD)
        display_name = hello.get("display_name")
        name = display_name if isinstance(display_name, str) else ""
        s.lang = preferred(hello.get("lang") if isinstance(hello.get("lang"), str) else None)
        try:
            identity = await identify(app, hello["token"], name)
        except AuthError as e:
            # a revoked session token: the participant was denied, or the consultation ended
            close = {"denied": CLOSE_REFUSED, "consultation_ended": CLOSE_ENDED}.get(e.code, CLOSE_AUTH)
            raise Fatal(e.code, e.message, close) from None
        except Gone as e:
            raise Fatal(e.code, e.message, CLOSE_REFUSED) from None
        except NotFound as e:
            raise Fatal(e.code, e.message, CLOSE_UNKNOWN) from None
        principal = s.principal = identity.principal
        if principal.consultation_id and principal.consultation_id != s.cid:
            raise Fatal("consultation_not_found", "Fant ikke denne konsultasjonen.", CLOSE_UNKNOWN)
        store = app[STORE]
        try:
            consultation = await store.consultations.get(principal.tenant, s.cid)
        except NotFound as e:
            raise Fatal(e.code, e.message, CLOSE_UNKNOWN) from None
        if consultation.state == ConsultationState.ENDED:
            raise Fatal("consultation_ended", "Konsultasjonen er avsluttet.", CLOSE_ENDED)
        elsewhere = await app[NODE].owner_elsewhere(principal.tenant, s.cid)
        if elsewhere is not None:
            # The consultation's media lives on another node: tell the client where to go.
            await s.send({"type": "error", "code": "wrong_node", "signal_url": elsewhere,
                          "message": "Koble til på nytt via signal_url."})
            await s.ws.close(code=CLOSE_WRONG_NODE, message=b"wrong_node")
            raise Done
        participant = identity.participant or consultation.participant_for(principal.subject)
        # Subscribe before reading the lobby state, so an admit that lands in between is not missed.
        subscribed = asyncio.Event()
        self._events = asyncio.create_task(self._follow_events(subscribed), name=f"signal-events-{s.cid}")
        await subscribed.wait()
        if participant is None:
            try:
                participant = await store.rooms.knock(principal, s.cid)
                await store.durable()  # REDIS_MIN_REPLICAS_ACK: the knock is on the replicas before the welcome
            except Forbidden as e:
                raise Fatal(e.code, e.message, CLOSE_REFUSED) from None
            except RateLimited as e:
                raise Fatal(e.code, e.message, CLOSE_RATE) from None
        if participant.state == ParticipantState.DENIED:
            raise Fatal("denied", "Du ble ikke sluppet inn i denne konsultasjonen.", CLOSE_REFUSED)
        s.participant_id = participant.id
        s.lifetime.register()
        session_token = identity.session_token or app[AUTH].issue_session_token(principal, s.cid, participant.id)
        # TURN credentials only once admitted: a lobby guest cannot use our relay (they come with `admitted`).
        admitted = participant.state == ParticipantState.ADMITTED
        await s.send({"type": "welcome", "participant_id": participant.id, "role": principal.role.value,
                      "state": participant.state.value, "session_token": session_token,
                      "ice_servers": self.ice_servers() if admitted else []})
        s.lifetime.start_refreshing()
        if participant.state == ParticipantState.ADMITTED:
            await s.media.enter_room()
        else:
            # A decision may have landed before we subscribed (an invite is spent before hello is answered).
            fresh = (await store.consultations.get(principal.tenant, s.cid)).participant(participant.id)
            if fresh and fresh.state == ParticipantState.ADMITTED:
                await s.media.enter_room()
                await s.send({"type": "admitted", "ice_servers": self.ice_servers()})
            elif fresh and fresh.state == ParticipantState.DENIED:
                raise Fatal("denied", "Du ble ikke sluppet inn i denne konsultasjonen.", CLOSE_REFUSED)

    def ice_servers(self) -> list[dict[str, Any]]:
        assert self._s.principal
        return ice_servers_for(self._s.app[CONFIG], self._s.principal.subject)

    async def stop(self) -> None:
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events

    # --- the consultation's events ----------------------------------------------------------------

    async def _follow_events(self, subscribed: asyncio.Event) -> None:
        """This consultation's events through the process's one EventHub (no Redis connection of its own)."""
        s = self._s
        assert s.principal
        with s.app[HUB].inbox(s.principal.tenant, consultation_topic(s.cid)) as events:
            subscribed.set()
            while True:
                await self._on_event(await events.get())

    async def _resync(self) -> None:
        """Events may have been lost while the hub resubscribed: read the decision from the store."""
        s = self._s
        assert s.principal
        try:
            consultation = await s.app[STORE].consultations.get(s.principal.tenant, s.cid)
        except NotFound:
            return
        me = consultation.participant(s.participant_id) if s.participant_id else None
        if consultation.state == ConsultationState.ENDED:
            await self._on_event(ConsultationEnded(s.cid, consultation.outcome))
        elif me is not None and me.state in (ParticipantState.ADMITTED, ParticipantState.DENIED):
            await self._on_event(ParticipantDecided(s.cid, me.id, me.state == ParticipantState.ADMITTED))

    async def _on_event(self, event: Event | Resync) -> None:
        s = self._s
        if isinstance(event, Resync):
            await self._resync()
            return
        mine = isinstance(event, ParticipantDecided) and event.participant_id == s.participant_id
        if mine and isinstance(event, ParticipantDecided) and event.admitted and s.peer is None:
            try:
                await s.media.enter_room()  # the peer exists before the client hears it may offer
            except MediaError as e:  # room_full
                await s.error(e.code, e.message)
                await s.ws.close(code=CLOSE_REFUSED, message=e.code.encode())
                return
            await s.send({"type": "admitted", "ice_servers": self.ice_servers()})
        elif mine and isinstance(event, ParticipantDecided) and not event.admitted:
            await s.send({"type": "denied"})
            await s.ws.close(code=CLOSE_REFUSED, message=b"denied")
        elif isinstance(event, ConsultationEnded):
            s.ended = True
            # The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
            guest = s.principal is not None and s.principal.role in (Role.INTERPRETER, Role.RELATIVE)
            outcome = event.outcome.value if event.outcome and not guest else None
            await s.send({"type": "ended", "outcome": outcome})
            await s.ws.close(code=CLOSE_ENDED, message=b"ended")
        elif isinstance(event, Knocked) and s.peer is not None and s.principal and s.principal.is_staff:
            # The event names the participant by id only (no names on pub/sub): read who it is.
            c = await s.app[STORE].consultations.get(s.principal.tenant, s.cid)
            knocking = c.participant(event.participant_id)
            if knocking is not None:
                await s.send({"type": "knock", "participant_id": knocking.id, "role": knocking.role.value,
                              "display_name": knocking.display_name})
