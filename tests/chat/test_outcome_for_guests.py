"""The outcome goes to the patient and the clinicians; an interpreter in the same chat is told the
consultation ended, without the outcome."""

from __future__ import annotations

from tests.chat.conftest import base_url, connect, consultation
from tests.conftest import bearer


async def test_the_interpreter_hears_ended_without_the_outcome(chat_app):
    pair = await consultation(chat_app)
    r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/invites", json={"role": "interpreter", "lobby": False},
                            headers=bearer(pair.doctor))
    invite = await r.json()
    url = base_url(chat_app)
    citizen = await connect(url, pair.citizen)
    interpreter = await connect(url, invite["token"], display_name="Tolk")
    try:
        for c in (citizen, interpreter):
            assert (await c.call("join", {"consultation_id": pair.cid}))["ok"]
        await chat_app.post(f"/api/v1/consultations/{pair.cid}/end", json={"outcome": "referred"},
                            headers=bearer(pair.doctor))
        [to_patient] = await citizen.wait_for("ended")
        [to_interpreter] = await interpreter.wait_for("ended")
        assert to_patient == {"consultation_id": pair.cid, "outcome": "referred"}
        assert to_interpreter == {"consultation_id": pair.cid, "outcome": None}
    finally:
        await citizen.close()
        await interpreter.close()
