"""The chat (Socket.IO) events under hostile payloads: every event is answered by an ack that is either
`{"ok": true, ...}` or `{"ok": false, "error": code, "message": text}` with a code other than `internal`;
a hostile `auth` on connect is refused cleanly; nothing unhandled reaches the logs."""

from __future__ import annotations

from typing import Any

import aiohttp
import socketio
from hypothesis import given
from hypothesis import strategies as st

from .conftest import ORIGIN, Live, examples
from .strategies import json_values, objects, text

EVENTS = ["join", "leave", "message", "attachment", "history", "typing", "read", "watch_ticket", "whoami", "dance"]
FIELDS = ["consultation_id", "client_id", "text", "after_id", "up_to_id", "typing", "ticket_id", "data", "name"]


class Chat:
    async def setup(self, live: Live) -> None:
        self.base = live.base
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.base}/api/v1/dev/token", json={"sub": "fz-doc", "role": "clinician",
                                                                        "tenant": "oslo", "name": "Fuzz"}) as r:
                self.token = (await r.json())["token"]
            async with http.post(f"{self.base}/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                 headers={"Authorization": f"Bearer {self.token}"}) as r:
                self.cid = (await r.json())["id"]
        self.sio = await self.connect({"token": self.token})
        assert self.sio is not None
        ack = await self.sio.call("join", {"consultation_id": self.cid}, timeout=10)
        assert ack["ok"], ack

    async def connect(self, auth: Any) -> socketio.AsyncClient | None:
        sio = socketio.AsyncClient(reconnection=False)
        try:
            await sio.connect(self.base, auth=auth, headers={"Origin": ORIGIN}, transports=["websocket"],
                              socketio_path="socket.io", wait_timeout=5)
        except socketio.exceptions.ConnectionError:
            return None
        return sio

    async def emit(self, event: str, payload: Any) -> Any:
        if not self.sio.connected:
            self.sio = await self.connect({"token": self.token})
            assert self.sio is not None
        if event in EVENTS[:-1]:
            return await self.sio.call(event, payload, timeout=10)
        # an event the server does not handle gets no ack: the connection must still answer afterwards
        await self.sio.emit(event, payload)
        return await self.sio.call("whoami", {}, timeout=10)


def test_chat_events_answer_hostile_payloads_with_clean_acks(live: Live) -> None:
    chat = Chat()
    live.client.run(chat.setup(live))
    values = json_values([chat.cid, "1-0", "0-0"])
    payloads = st.one_of(objects(FIELDS, values=values), values,
                         st.builds(lambda d: {**d, "consultation_id": chat.cid}, objects(FIELDS, values=values)))

    @examples(250)
    @given(st.sampled_from(EVENTS) | text(), payloads)
    def check(event: str, payload: Any) -> None:
        ack = live.client.run(chat.emit(event, payload))
        assert isinstance(ack, dict), ack
        if not ack.get("ok"):
            assert isinstance(ack.get("error"), str) and isinstance(ack.get("message"), str), ack
            assert ack["error"] != "internal", (event, ack)

    try:
        check()
    finally:
        live.client.run(chat.sio.disconnect())
    assert not live.crashes.records, live.crashes.describe()  # type: ignore[attr-defined]


def test_hostile_connect_auth_is_refused_cleanly(live: Live) -> None:
    chat = Chat()
    live.client.run(chat.setup(live))

    @examples(30)
    @given(st.one_of(objects(["token", "display_name"], values=json_values()), json_values()))
    def check(auth: Any) -> None:
        sio = live.client.run(chat.connect(auth))
        if sio is not None:
            live.client.run(sio.disconnect())

    try:
        check()
    finally:
        live.client.run(chat.sio.disconnect())
    assert not live.crashes.records, live.crashes.describe()  # type: ignore[attr-defined]
