"""The signaling WebSocket: `GET /api/v1/consultations/{id}/signal` (protocol in docs/protocol.md).

A thin adapter between the browser and the SFU: it authenticates `hello`, keeps people who were not
pre-authorised in the lobby until a clinician admits them, and passes offers, answers and candidates
to the participant's `media.Peer`. One connection per participant: a new one replaces the old (a
phone moving from Wi-Fi to 4G); a dropped one is removed from the room after a grace period unless
it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from media import MediaError, Peer, Sfu
from media import metrics as media_metrics
from media.ice import turn_rest_credentials
from rooms.audit import Action
from rooms.errors import DomainError, Forbidden, Gone, NotFound, RateLimited, Unavailable
from rooms.events import consultation_topic
from rooms.models import ConsultationState, ParticipantState, Principal, Role

from .appkeys import AUTH, CONFIG, HUB, STORE
from .auth import SESSION_REFRESH_S, AuthError
from .config import Config
from .http import error_response, parse_json
from .identity import identify
from .liveness import Liveness
from .lobby import knock
from .messages import preferred, translate
from .metrics import METRICS
from .placement import NODE

log = logging.getLogger(__name__)

SFU = web.AppKey("sfu", Sfu)
SIGNAL_SESSIONS = web.AppKey("signal_sessions", dict)

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


def ice_servers_for(config: Config, user: str) -> list[dict[str, Any]]:
    """The RTCIceServer list handed to one participant in `welcome` (`[]` in the embedded default)."""
    servers = [s.model_dump(exclude_none=True) for s in config.ice_servers]
    if config.turn is not None:
        username, credential = turn_rest_credentials(config.turn.secret, user, config.turn.ttl_s)
        servers.append({"urls": list(config.turn.urls), "username": username, "credential": credential})
    return servers


class _Done(Exception):
    """The session ended normally before the message loop (e.g. redirected to another node)."""


class _Fatal(Exception):
    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


@dataclass
class _Bucket:
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


class SignalSession:
    def __init__(self, app: web.Application, ws: web.WebSocketResponse, consultation_id: str) -> None:
        self.app = app
        self.ws = ws
        self.lang = "nb"  # error messages: the `lang` of hello (nb, nn, en)
        self.cid = consultation_id
        self.principal: Principal | None = None
        self.participant_id: str | None = None
        self.peer: Peer | None = None
        self.admitted = asyncio.Event()
        self.left = False
        self.ended = False
        self.bucket = _Bucket()
        self._events: asyncio.Task[None] | None = None
        self._offer_sent_at: float | None = None  # a server offer waiting for the client's answer
        self._watchdog: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.liveness = Liveness(ws, app[CONFIG].signal_drop_grace_s, on_silent=self._silent,
                                 on_heard=self._heard_again, on_gone=self._gone)
        self._pinger: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        assert self.principal and self.participant_id
        return (self.principal.tenant, self.cid, self.participant_id)

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "offer" and self._offer_sent_at is None:
            self._offer_sent_at = time.monotonic()
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_json(message)

    async def error(self, code: str, message: str) -> None:
        self.app[METRICS].signal_errors.labels(code).inc()
        await self.send({"type": "error", "code": code, "message": translate(code, self.lang, message)})

    async def run(self) -> None:
        try:
            await self._hello()
            await self._loop()
        except MediaError as e:  # e.g. room_full when entering the room
            await self.error(e.code, e.message)
            await self.ws.close(code=CLOSE_REFUSED, message=e.code.encode())
        except _Fatal as f:
            await self.error(f.code, f.message)
            await self.ws.close(code=f.close_code, message=f.code.encode())
        except (Unavailable, RedisConnectionError, RedisTimeoutError) as e:
            # Redis away (a failover) or too few replicas confirmed the knock: come back after retry_after_s.
            u = e if isinstance(e, Unavailable) else Unavailable("Tjenesten er midlertidig utilgjengelig. Prøv igjen.",
                                                                 retry_after_s=2)
            await self.send({"type": "error", "code": u.code, "retry_after_s": u.retry_after_s,
                             "message": translate(u.code, self.lang, u.message)})
            await self.ws.close(code=CLOSE_UNAVAILABLE, message=u.code.encode())
        except _Done:
            pass

    # --- hello, welcome, lobby -------------------------------------------------------------------

    async def _hello(self) -> None:
        try:
            msg = await self.ws.receive(timeout=HELLO_TIMEOUT_S)
            while msg.type in (WSMsgType.PING, WSMsgType.PONG):  # autoping is off
                if msg.type == WSMsgType.PING:
                    await self.ws.pong(msg.data)
                msg = await self.ws.receive(timeout=HELLO_TIMEOUT_S)
        except TimeoutError:
            raise _Fatal("hello_timeout", "Fikk ikke hello i tide.", CLOSE_BAD) from None
        hello = self._parse(msg)
        if hello is None or hello.get("type") != "hello" or not isinstance(hello.get("token"), str):
            raise _Fatal("hello_expected", "Første melding må være hello med token.", CLOSE_BAD)
        display_name = hello.get("display_name")
        name = display_name if isinstance(display_name, str) else ""
        self.lang = preferred(hello.get("lang") if isinstance(hello.get("lang"), str) else None)
        try:
            identity = await identify(self.app, hello["token"], name)
        except AuthError as e:
            # a revoked session token: the participant was denied, or the consultation ended
            close = {"denied": CLOSE_REFUSED, "consultation_ended": CLOSE_ENDED}.get(e.code, CLOSE_AUTH)
            raise _Fatal(e.code, e.message, close) from None
        except Gone as e:
            raise _Fatal(e.code, e.message, CLOSE_REFUSED) from None
        except NotFound as e:
            raise _Fatal(e.code, e.message, CLOSE_UNKNOWN) from None
        principal = self.principal = identity.principal
        if principal.consultation_id and principal.consultation_id != self.cid:
            raise _Fatal("consultation_not_found", "Fant ikke denne konsultasjonen.", CLOSE_UNKNOWN)
        store = self.app[STORE]
        try:
            consultation = await store.consultations.get(principal.tenant, self.cid)
        except NotFound as e:
            raise _Fatal(e.code, e.message, CLOSE_UNKNOWN) from None
        if consultation.state == ConsultationState.ENDED:
            raise _Fatal("consultation_ended", "Konsultasjonen er avsluttet.", CLOSE_ENDED)
        elsewhere = await self.app[NODE].owner_elsewhere(principal.tenant, self.cid)
        if elsewhere is not None:
            # The consultation's media lives on another node: tell the client where to go.
            await self.send({"type": "error", "code": "wrong_node", "signal_url": elsewhere,
                             "message": "Koble til på nytt via signal_url."})
            await self.ws.close(code=CLOSE_WRONG_NODE, message=b"wrong_node")
            raise _Done
        participant = identity.participant or consultation.participant_for(principal.subject)
        # Subscribe before reading the lobby state, so an admit that lands in between is not missed.
        subscribed = asyncio.Event()
        self._events = asyncio.create_task(self._follow_events(subscribed), name=f"signal-events-{self.cid}")
        await subscribed.wait()
        if participant is None:
            try:
                participant = await knock(store, principal, self.cid)
                await store.durable()  # REDIS_MIN_REPLICAS_ACK: the knock is on the replicas before the welcome
            except Forbidden as e:
                raise _Fatal(e.code, e.message, CLOSE_REFUSED) from None
            except RateLimited as e:
                raise _Fatal(e.code, e.message, CLOSE_RATE) from None
        if participant.state == ParticipantState.DENIED:
            raise _Fatal("denied", "Du ble ikke sluppet inn i denne konsultasjonen.", CLOSE_REFUSED)
        self.participant_id = participant.id
        self._register()
        session_token = identity.session_token or self.app[AUTH].issue_session_token(
            principal, self.cid, participant.id)
        # TURN credentials only once admitted: a lobby guest cannot use our relay (they come with `admitted`).
        admitted = participant.state == ParticipantState.ADMITTED
        await self.send({"type": "welcome", "participant_id": participant.id, "role": principal.role.value,
                         "state": participant.state.value, "session_token": session_token,
                         "ice_servers": self._ice_servers() if admitted else []})
        self._refresher = asyncio.create_task(self._refresh_session(), name=f"signal-session-{self.cid}")
        if participant.state == ParticipantState.ADMITTED:
            await self._enter_room()
        else:
            # the admit may have happened between our read and the subscription
            # A decision may have landed before we subscribed (an invite is spent before hello is answered).
            fresh = (await store.consultations.get(principal.tenant, self.cid)).participant(participant.id)
            if fresh and fresh.state == ParticipantState.ADMITTED:
                await self._enter_room()
                await self.send({"type": "admitted", "ice_servers": self._ice_servers()})
            elif fresh and fresh.state == ParticipantState.DENIED:
                raise _Fatal("denied", "Du ble ikke sluppet inn i denne konsultasjonen.", CLOSE_REFUSED)

    def _ice_servers(self) -> list[dict[str, Any]]:
        assert self.principal
        return ice_servers_for(self.app[CONFIG], self.principal.subject)

    async def _refresh_session(self) -> None:
        """Session tokens are short-lived: hand out a fresh one while the socket is open, so a reconnect or
        the chat can still use it; once revoked (ended, denied) `identity.verify` refuses it anyway."""
        assert self.principal and self.participant_id
        while not self.ws.closed:
            await asyncio.sleep(SESSION_REFRESH_S)
            token = self.app[AUTH].issue_session_token(self.principal, self.cid, self.participant_id)
            await self.send({"type": "session_token", "session_token": token})

    def _register(self) -> None:
        sessions: dict[tuple[str, str, str], SignalSession] = self.app[SIGNAL_SESSIONS]
        old = sessions.get(self.key)
        sessions[self.key] = self
        if old is not None and old is not self:
            asyncio.get_running_loop().create_task(old.replaced())

    async def replaced(self) -> None:
        await self.error("replaced", "Du koblet til fra et annet sted; denne tilkoblingen er lukket.")
        await self.ws.close(code=CLOSE_REPLACED, message=b"replaced")

    async def _enter_room(self) -> None:
        if self.peer is not None:
            return
        assert self.principal and self.participant_id
        room = self.app[SFU].room(self.cid)
        self.peer = await room.join(self.participant_id, self.principal.role.value, self.principal.name, self.send)
        self._watchdog = asyncio.create_task(self._watch_answers(), name=f"signal-answers-{self.cid}")
        self.admitted.set()
        store = self.app[STORE]
        await store.audit.record(self.principal.tenant, Action.CONSULTATION_JOINED, actor=self.principal.subject,
                                 role=self.principal.role, consultation_id=self.cid)
        tenant = self.principal.tenant
        changed = await store.consultations.open(tenant, self.cid)
        if len(room.participants()) >= 2:
            changed = await store.consultations.activate(tenant, self.cid) or changed
        if changed:
            await store.events.publish(tenant, consultation_topic(self.cid), {"type": "changed"})

    async def _follow_events(self, subscribed: asyncio.Event) -> None:
        """This consultation's events through the process's one EventHub (no Redis connection of its own)."""
        assert self.principal
        with self.app[HUB].inbox(self.principal.tenant, consultation_topic(self.cid)) as events:
            subscribed.set()
            while True:
                await self._on_event(await events.get())

    async def _resync(self) -> None:
        """Events may have been lost while the hub resubscribed: read the decision from the store."""
        assert self.principal
        try:
            consultation = await self.app[STORE].consultations.get(self.principal.tenant, self.cid)
        except NotFound:
            return
        me = consultation.participant(self.participant_id) if self.participant_id else None
        if consultation.state == ConsultationState.ENDED:
            outcome = consultation.outcome.value if consultation.outcome else None
            await self._on_event({"type": "ended", "outcome": outcome})
        elif me is not None and me.state == ParticipantState.ADMITTED:
            await self._on_event({"type": "admitted", "participant_id": me.id})
        elif me is not None and me.state == ParticipantState.DENIED:
            await self._on_event({"type": "denied", "participant_id": me.id})

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "resync":
            await self._resync()
            return
        mine = event.get("participant_id") == self.participant_id
        if kind == "admitted" and mine and self.peer is None:
            try:
                await self._enter_room()  # the peer exists before the client hears it may offer
            except MediaError as e:  # room_full
                await self.error(e.code, e.message)
                await self.ws.close(code=CLOSE_REFUSED, message=e.code.encode())
                return
            await self.send({"type": "admitted", "ice_servers": self._ice_servers()})
        elif kind == "denied" and mine:
            await self.send({"type": "denied"})
            await self.ws.close(code=CLOSE_REFUSED, message=b"denied")
        elif kind == "ended":
            self.ended = True
            # The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
            guest = self.principal is not None and self.principal.role in (Role.INTERPRETER, Role.RELATIVE)
            await self.send({"type": "ended", "outcome": None if guest else event.get("outcome")})
            await self.ws.close(code=CLOSE_ENDED, message=b"ended")
        elif kind == "knock" and self.peer is not None and self.principal and self.principal.is_staff:
            # The event names the participant by id only (no names on pub/sub): read who it is.
            c = await self.app[STORE].consultations.get(self.principal.tenant, self.cid)
            knocking = c.participant(str(event.get("participant_id")))
            if knocking is not None:
                await self.send({"type": "knock", "participant_id": knocking.id, "role": knocking.role.value,
                                 "display_name": knocking.display_name})

    async def _watch_answers(self) -> None:
        """A client that never answers a server offer would block every later renegotiation (the server
        never has two offers outstanding): close it, so it reconnects with a fresh peer connection."""
        limit = self.app[CONFIG].signal_answer_timeout_s
        while not self.ws.closed:
            await asyncio.sleep(min(1.0, limit / 4))
            if self._offer_sent_at is not None and time.monotonic() - self._offer_sent_at > limit:
                await self.error("answer_timeout", "Svaret på serverens tilbud kom ikke i tide; kobler til på nytt.")
                await self.ws.close(code=CLOSE_ANSWER_TIMEOUT, message=b"answer_timeout")
                return

    def _current(self) -> bool:
        """Whether this socket still speaks for the participant (not replaced by a newer one)."""
        return self.participant_id is not None and self.app[SIGNAL_SESSIONS].get(self.key) is self

    async def _silent(self) -> None:  # no frame for a while: the others see "reconnecting"
        if self.peer is not None and self._current():
            await self.app[SFU].room(self.cid).dropped(self.key[2], self.app[CONFIG].signal_drop_grace_s)

    async def _heard_again(self) -> None:  # a short blip: "connected" again, same peer connection
        if self.peer is not None and self._current():
            await self.app[SFU].room(self.cid).present(self.key[2])

    async def _gone(self) -> None:
        """Silent for the whole grace period: the participant leaves the room now (closing a dead socket
        would wait for a close frame that never comes)."""
        if self._current():
            del self.app[SIGNAL_SESSIONS][self.key]
            await self.app[SFU].room(self.cid).leave(self.key[2])
        await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"silent")

    # --- offer/answer loop -----------------------------------------------------------------------

    def _parse(self, msg: Any) -> dict[str, Any] | None:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            raise _Fatal("closed", "Tilkoblingen ble lukket.", WSCloseCode.OK)
        if msg.type != WSMsgType.TEXT:
            raise _Fatal("text_expected", "Bare JSON-tekstmeldinger støttes.", CLOSE_BAD)
        data = parse_json(msg.data)  # None for bad JSON, deep nesting or lone surrogates
        return data if isinstance(data, dict) and isinstance(data.get("type"), str) else None

    async def _loop(self) -> None:
        self.liveness.heard()
        self._pinger = asyncio.create_task(self.liveness.run(), name=f"signal-liveness-{self.cid}")
        async for msg in self.ws:
            self.liveness.heard()
            if msg.type == WSMsgType.PONG:  # the answer to our liveness ping
                continue
            if not self.bucket.take():
                raise _Fatal("rate_limited", "For mange meldinger.", CLOSE_RATE)
            if msg.type == WSMsgType.PING:  # autoping is off (we watch pongs), so answer pings ourselves
                await self.ws.pong(msg.data)
                continue
            data = self._parse(msg)
            if data is None:
                await self.error("bad_message", "Meldingen er ikke gyldig JSON med en type.")
                continue
            try:
                with self.liveness.busy():  # frames wait unread meanwhile: that is not the client's silence
                    await self._dispatch(data)
            except MediaError as e:
                await self.error(e.code, e.message)
            except DomainError as e:
                await self.error(e.code, e.message)
            if self.left:
                await self.ws.close(code=WSCloseCode.OK, message=b"left")
                return

    async def _dispatch(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind == "leave":
            self.left = True
            return
        if kind not in ("offer", "answer", "candidate", "media_state"):
            await self.error("unknown_type", f"Ukjent meldingstype: {kind[:40]}.")
            return
        if self.peer is None:
            await self.error("not_admitted", "Du er ikke sluppet inn ennå.")
            return
        if kind == "media_state":  # the client muted or switched its camera off: shown on its tile
            audio_off, video_off = data.get("audio_off"), data.get("video_off")
            if not isinstance(audio_off, bool) or not isinstance(video_off, bool):
                await self.error("bad_media_state", "audio_off og video_off må være true eller false.")
                return
            await self.app[SFU].room(self.cid).set_media_off(self.participant_id or "", audio=audio_off,
                                                              video=video_off)
            return
        if kind == "candidate":
            candidate = data.get("candidate")
            if candidate is not None and not isinstance(candidate, dict):
                await self.error("bad_candidate", "candidate må være et objekt eller null.")
                return
            await self.peer.add_candidate(candidate)
            return
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            await self.error("bad_sdp", "sdp mangler.")
            return
        if kind == "offer":
            labels = data.get("track_labels")
            labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None
            await self.peer.handle_offer(sdp, labels)  # the peer sends the answer itself
        else:
            await self.peer.handle_answer(sdp)
            self._offer_sent_at = None

    # --- teardown --------------------------------------------------------------------------------

    async def cleanup(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._pinger is not None:
            self._pinger.cancel()
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
        if self.participant_id is None or self.principal is None:
            return
        sessions: dict[tuple[str, str, str], SignalSession] = self.app[SIGNAL_SESSIONS]
        if sessions.get(self.key) is not self:
            return  # replaced by a newer connection, which now owns the peer
        if self.left or self.ended:
            del sessions[self.key]
            await self.app[SFU].room(self.cid).leave(self.participant_id)
            return
        # Dropped: keep the place for a grace period, then remove the participant unless it came back.
        # A client already silent (liveness) keeps the countdown it has.
        key, pid, grace = self.key, self.participant_id, self.liveness.grace_left()
        if self.peer is not None and self.liveness.silent_since is None:  # the others see "reconnecting"
            with contextlib.suppress(Exception):
                await self.app[SFU].room(self.cid).dropped(pid, grace)

        async def remove_later() -> None:
            await asyncio.sleep(grace)
            if sessions.get(key) is self:
                del sessions[key]
                await self.app[SFU].room(self.cid).leave(pid)

        pending: set[asyncio.Task[None]] = self.app[_PENDING]
        task = asyncio.get_running_loop().create_task(remove_later())
        pending.add(task)
        task.add_done_callback(pending.discard)


_PENDING = web.AppKey("signal_pending_removals", set)


def origin_allowed(request: web.Request) -> bool:
    """The Origin header is required (as on the chat socket): a configured origin, or outside production
    the page's own origin (scheme and host of this very request; a browser cannot forge either)."""
    config = request.app[CONFIG]
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin:
        return False
    if origin in config.origins():
        return True
    return not config.production and origin == f"{request.scheme}://{request.host}"


async def signal(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        return error_response(403, "origin_not_allowed", "Tilkobling fra denne nettsiden er ikke tillatt.")
    # No aiohttp heartbeat: signaling/liveness.py pings every second and watches the pongs (autoping off).
    ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    session = SignalSession(request.app, ws, request.match_info["consultation_id"])
    try:
        await session.run()
    except Exception:
        log.exception("signaling session failed")
        await session.error("internal", "Noe gikk galt hos oss.")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    finally:
        await session.cleanup()
    return ws


async def _sfu_ctx(app: web.Application) -> Any:
    app[SIGNAL_SESSIONS] = {}
    app[_PENDING] = set()
    sfu = app[SFU]
    yield
    for task in app[_PENDING]:
        task.cancel()
    for session in list(app[SIGNAL_SESSIONS].values()):
        await session.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
    await sfu.close()


SIGNAL_OPENAPI = {"/api/v1/consultations/{consultation_id}/signal": {"get": {
    "summary": "Signaling WebSocket (JSON messages; see docs/protocol.md)", "operationId": "signal",
    "tags": ["media"],
    "parameters": [{"name": "consultation_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {"101": {"description": "Switching to the WebSocket protocol"},
                  "403": {"description": "Origin not allowed",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
}}}


def setup_signaling(app: web.Application, sfu: Sfu) -> None:
    # aioice logs candidate addresses (client IPs) at INFO: keep personal data out of the logs.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    app[SFU] = sfu
    media_metrics.register(sfu, app[METRICS].registry)
    app.router.add_get("/api/v1/consultations/{consultation_id}/signal", signal)
    app.cleanup_ctx.append(_sfu_ctx)
