"""The embedded default (no REDIS_URL: in-process fakeredis, one process) runs the same chat code path."""

from __future__ import annotations

from tests.chat.conftest import ORIGIN, base_url, connect, consultation, start_app


async def test_chat_works_on_the_embedded_store(make_config):
    config = make_config(allowed_origins=[ORIGIN]).model_copy(update={"redis_url": None})
    app = await start_app(config)
    try:
        pair = await consultation(app)
        doctor = await connect(base_url(app), pair.doctor)
        citizen = await connect(base_url(app), pair.citizen)
        for c in (doctor, citizen):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        first = await citizen.send(pair.cid, "hei", client_id="a")
        assert (await citizen.send(pair.cid, "hei", client_id="a"))["id"] == first["id"]
        [msg] = await doctor.wait_for("message")
        assert msg["text"] == "hei"
        read = await doctor.call("read", {"consultation_id": pair.cid, "up_to_id": first["id"]})
        assert read["up_to_id"] == first["id"]
        history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
        assert [m["id"] for m in history["messages"]] == [first["id"]]
        await doctor.close()
        await citizen.close()
    finally:
        await app.close()
