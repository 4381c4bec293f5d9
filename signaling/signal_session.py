"""One participant's signaling socket: the message loop, and the concerns it hands messages to --
signal_admission.py (hello, welcome, the lobby, the consultation's events), signal_media.py (the relay to
`media.Peer`), signal_lifetime.py (one socket per participant, session tokens, liveness, the drop grace)."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from media import MediaError, Peer
from rooms.errors import DomainError, Unavailable
from rooms.models import Principal

from .messages import translate
from .metrics import METRICS
from .signal_admission import Admission
from .signal_lifetime import Lifetime
from .signal_media import KINDS, MediaRelay
from .signal_protocol import CLOSE_RATE, CLOSE_REFUSED, CLOSE_UNAVAILABLE, Bucket, Done, Fatal, parse


class SignalSession:
    def __init__(self, app: web.Application, ws: web.WebSocketResponse, consultation_id: str) -> None:
        self.app = app
        self.ws = ws
        self.lang = "nb"  # error messages: the `lang` of hello (nb, nn, en)
        self.cid = consultation_id
        self.principal: Principal | None = None
        self.participant_id: str | None = None
        self.left = False
        self.ended = False
        self.bucket = Bucket()
        self.admission = Admission(self)
        self.media = MediaRelay(self)
        self.lifetime = Lifetime(self)

    @property
    def key(self) -> tuple[str, str, str]:
        assert self.principal and self.participant_id
        return (self.principal.tenant, self.cid, self.participant_id)

    @property
    def peer(self) -> Peer | None:
        """The participant's peer connection, once admitted."""
        return self.media.peer

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_json(message)

    async def error(self, code: str, message: str) -> None:
        self.app[METRICS].signal_errors.labels(code).inc()
        await self.send({"type": "error", "code": code, "message": translate(code, self.lang, message)})

    async def run(self) -> None:
        try:
            await self.admission.hello()
            await self._loop()
        except MediaError as e:  # e.g. room_full when entering the room
            await self.error(e.code, e.message)
            await self.ws.close(code=CLOSE_REFUSED, message=e.code.encode())
        except Fatal as f:
            await self.error(f.code, f.message)
            await self.ws.close(code=f.close_code, message=f.code.encode())
        except (Unavailable, RedisConnectionError, RedisTimeoutError) as e:
            # Redis away (a failover) or too few replicas confirmed the knock: come back after retry_after_s.
            u = e if isinstance(e, Unavailable) else Unavailable("Tjenesten er midlertidig utilgjengelig. Prøv igjen.",
                                                                 retry_after_s=2)
            await self.send({"type": "error", "code": u.code, "retry_after_s": u.retry_after_s,
                             "message": translate(u.code, self.lang, u.message)})
            await self.ws.close(code=CLOSE_UNAVAILABLE, message=u.code.encode())
        except Done:
            pass

    async def _loop(self) -> None:
        liveness = self.lifetime.liveness
        self.lifetime.start_liveness()
        async for msg in self.ws:
            liveness.heard()
            if msg.type == WSMsgType.PONG:  # the answer to our liveness ping
                continue
            if not self.bucket.take():
                raise Fatal("rate_limited", "For mange meldinger.", CLOSE_RATE)
            if msg.type == WSMsgType.PING:  # autoping is off (we watch pongs), so answer pings ourselves
                await self.ws.pong(msg.data)
                continue
            data = parse(msg)
            if data is None:
                await self.error("bad_message", "Meldingen er ikke gyldig JSON med en type.")
                continue
            try:
                with liveness.busy():  # frames wait unread meanwhile: that is not the client's silence
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
        elif kind in KINDS:
            await self.media.handle(data)
        else:
            await self.error("unknown_type", f"Ukjent meldingstype: {kind[:40]}.")

    async def cleanup(self) -> None:
        self.lifetime.stop()
        await self.admission.stop()
        await self.lifetime.end()
