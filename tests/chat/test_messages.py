"""Messages: stored before the ack, broadcast once, idempotent by client_id, resync after a drop."""

from __future__ import annotations

import asyncio

from tests.chat.conftest import base_url, connect


async def test_message_is_stored_acked_and_broadcast_with_sender(joined):
    pair, doctor, citizen = joined
    ack = await citizen.send(pair.cid, "Hei, jeg har utslett på armen.")
    assert ack["ok"] and ack["id"] and isinstance(ack["ts"], float) and ack["duplicate"] is False
    [msg] = await doctor.wait_for("message")
    assert msg == {"id": ack["id"], "consultation_id": pair.cid, "text": "Hei, jeg har utslett på armen.",
                   "ts": ack["ts"], "sender": {"participant_id": pair.citizen_pid, "role": "citizen",
                                               "display_name": "Kari Nordmann"}}
    history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
    assert [m["id"] for m in history["messages"]] == [ack["id"]]
    assert citizen.got("message") == []  # the sending connection has the ack, not an echo


async def test_same_client_id_is_stored_once_acked_alike_and_broadcast_once(joined):
    pair, doctor, citizen = joined
    first = await citizen.send(pair.cid, "Prøver igjen", client_id="retry-1")
    again = await citizen.send(pair.cid, "Prøver igjen", client_id="retry-1")
    assert (again["id"], again["ts"]) == (first["id"], first["ts"]) and again["duplicate"] is True
    await citizen.send(pair.cid, "neste")
    await doctor.wait_for("message", 2)
    await asyncio.sleep(0.1)
    assert [m["text"] for m in doctor.got("message")] == ["Prøver igjen", "neste"]
    history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
    assert [m["text"] for m in history["messages"]] == ["Prøver igjen", "neste"]


async def test_concurrent_retries_of_one_client_id_store_one_message(joined):
    pair, _doctor, citizen = joined
    acks = await asyncio.gather(*[citizen.send(pair.cid, "samtidig", client_id="same") for _ in range(8)])
    assert len({(a["id"], a["ts"]) for a in acks}) == 1
    history = await citizen.call("history", {"consultation_id": pair.cid, "after_id": None})
    assert len(history["messages"]) == 1


async def test_dropped_client_resyncs_all_twenty_messages_once_in_order(chat_app, joined):
    pair, doctor, citizen = joined
    first = await doctor.send(pair.cid, "før bruddet")
    await citizen.wait_for("message")
    last_seen = citizen.got("message")[-1]["id"]
    assert last_seen == first["id"]
    await citizen.sio.eio.disconnect(abort=True)  # the citizen's connection drops without a goodbye
    sent = []
    for i in range(20):
        ack = await doctor.send(pair.cid, f"melding {i}")
        sent.append(ack["id"])
    back = await connect(base_url(chat_app), pair.citizen)
    try:
        ack = await back.call("join", {"consultation_id": pair.cid, "after_id": last_seen})
        assert [m["id"] for m in ack["history"]] == sent
        assert [m["text"] for m in ack["history"]] == [f"melding {i}" for i in range(20)]
        again = await back.call("history", {"consultation_id": pair.cid, "after_id": last_seen})
        assert [m["id"] for m in again["messages"]] == sent and again["more"] is False
        tail = await back.call("history", {"consultation_id": pair.cid, "after_id": sent[9]})
        assert [m["id"] for m in tail["messages"]] == sent[10:]
    finally:
        await back.close()


async def test_join_ack_carries_history_participants_and_reads(joined):
    pair, doctor, citizen = joined
    a = await citizen.send(pair.cid, "en")
    await doctor.send(pair.cid, "to")
    ack = await doctor.call("join", {"consultation_id": pair.cid})
    assert [m["text"] for m in ack["history"]] == ["en", "to"]
    assert ack["participant_id"] == pair.doctor_pid
    assert {p["role"] for p in ack["participants"]} == {"citizen", "clinician"}
    await doctor.call("read", {"consultation_id": pair.cid, "up_to_id": a["id"]})
    ack = await citizen.call("join", {"consultation_id": pair.cid})
    assert ack["reads"] == {pair.doctor_pid: a["id"]}


async def test_typing_reaches_the_other_side_only(joined):
    pair, doctor, citizen = joined
    assert (await doctor.call("typing", {"consultation_id": pair.cid, "typing": True}))["ok"]
    [t] = await citizen.wait_for("typing")
    assert t == {"consultation_id": pair.cid, "participant_id": pair.doctor_pid, "role": "clinician",
                 "typing": True}
    await asyncio.sleep(0.1)
    assert doctor.got("typing") == []


async def test_read_receipt_tells_the_citizen_the_doctor_has_read(joined):
    pair, doctor, citizen = joined
    a = await citizen.send(pair.cid, "Har du sett bildet?")
    b = await citizen.send(pair.cid, "Og dette?")
    ack = await doctor.call("read", {"consultation_id": pair.cid, "up_to_id": b["id"]})
    assert ack == {"ok": True, "up_to_id": b["id"]}
    [r] = await citizen.wait_for("read")
    assert r == {"consultation_id": pair.cid, "participant_id": pair.doctor_pid, "role": "clinician",
                 "up_to_id": b["id"]}
    # Read markers only move forward, and never past the last message.
    assert (await doctor.call("read", {"consultation_id": pair.cid, "up_to_id": a["id"]}))["up_to_id"] is None
    far = await doctor.call("read", {"consultation_id": pair.cid, "up_to_id": "99999999999999-0"})
    assert far["up_to_id"] is None
    await asyncio.sleep(0.1)
    assert len(citizen.got("read")) == 1


async def test_messages_sent_back_to_back_keep_their_order(joined):
    pair, doctor, citizen = joined
    acks = await asyncio.gather(*[citizen.send(pair.cid, f"raskt {i}") for i in range(15)])
    assert all(a["ok"] for a in acks)
    history = await doctor.call("history", {"consultation_id": pair.cid, "after_id": None})
    assert [m["text"] for m in history["messages"]] == [f"raskt {i}" for i in range(15)]
    await doctor.wait_for("message", 15)
    assert [m["text"] for m in doctor.got("message")] == [f"raskt {i}" for i in range(15)]


async def test_metrics_count_stored_messages_errors_and_connections(chat_app, joined):
    pair, _doctor, citizen = joined
    await citizen.send(pair.cid, "en", client_id="m-1")
    await citizen.send(pair.cid, "en", client_id="m-1")  # a retry: stored once, counted once
    await citizen.call("message", {"consultation_id": pair.cid, "client_id": "m-2", "text": ""})
    text = await (await chat_app.get("/metrics")).text()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["nettlege_chat_messages_total"] == 1
    assert values["nettlege_chat_connections"] == 2
    assert sum(v for k, v in values.items() if k.startswith("nettlege_chat_errors_total")) >= 1
