"""Photo attachments (checked by content, stored encrypted, served to participants) and the EPJ export."""

from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image

from rooms.audit import Action
from signaling.appkeys import STORE
from tests.chat.conftest import base_url, connect, consultation
from tests.conftest import bearer, dev_token


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00\xff\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), (30, 120, 200)).save(out, "JPEG", quality=80)
    return out.getvalue()


JPEG = _jpeg()  # a real (small) photo: what is stored is what was sent, metadata aside


async def test_a_photo_is_accepted_by_content_broadcast_and_served_to_participants_only(chat_app, joined):
    pair, doctor, citizen = joined
    png = tiny_png()
    ack = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "foto-1", "data": png,
                                            "name": "utslett.jpg", "text": "Se her"})
    assert ack["ok"], ack
    att = ack["attachment"]
    assert att["content_type"] == "image/png" and att["size"] == len(png) and att["name"] == "utslett.png"
    [msg] = await doctor.wait_for("message")
    assert msg["attachment"] == att and msg["text"] == "Se her"
    again = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "foto-1", "data": png})
    assert again["id"] == ack["id"] and again["duplicate"] and again["attachment"] == att

    url = f"/api/v1/consultations/{pair.cid}/attachments/{att['id']}"
    r = await chat_app.get(url, headers=bearer(pair.doctor))
    assert r.status == 200 and r.content_type == "image/png" and await r.read() == png
    assert r.headers["Cache-Control"] == "no-store"
    outsider = await dev_token(chat_app, "nosy", "clinician")
    assert (await chat_app.get(url, headers=bearer(outsider))).status == 404
    bergen = await dev_token(chat_app, "doc", "clinician", tenant="bergen")
    assert (await chat_app.get(url, headers=bearer(bergen))).status == 404
    assert (await chat_app.get(url)).status == 401
    missing = f"/api/v1/consultations/{pair.cid}/attachments/a_AAAAAAAAAAAAAAAA"
    assert (await (await chat_app.get(missing, headers=bearer(pair.doctor))).json())["error"] == \
        "attachment_not_found"
    audit = await chat_app.server.app[STORE].audit.for_consultation("oslo", pair.cid)
    assert [e.fields["action"] for e in audit].count(Action.ATTACHMENT_READ.value) == 1


async def test_jpeg_is_recognised_and_bad_attachments_get_a_code(joined):
    pair, _doctor, citizen = joined
    ok = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "j", "data": JPEG,
                                           "name": "boks.png"})
    assert ok["attachment"]["content_type"] == "image/jpeg" and ok["attachment"]["name"] == "boks.jpg"
    disguised = b"<html><script>alert(1)</script></html>"
    bad = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "x1", "data": disguised,
                                            "name": "bilde.jpg"})
    assert bad["error"] == "attachment_type"
    pdf = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "x2",
                                            "data": b"%PDF-1.7 ...", "name": "bilde.png"})
    assert pdf["error"] == "attachment_type"
    big = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "x3",
                                            "data": JPEG[:4] + b"\x00" * (5 * 1024 * 1024), "name": "stor.jpg"},
                             wait_s=20)
    assert big["error"] == "attachment_too_large"
    empty = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "x4", "data": b""})
    assert empty["error"] == "attachment_empty"
    notbytes = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "x5", "data": "abc"})
    assert notbytes["error"] == "invalid_event"
    assert (await citizen.send(pair.cid, "fortsatt her"))["ok"]


async def test_clinician_exports_the_transcript_as_json_text_and_pdf_audited(chat_app, joined):
    pair, doctor, citizen = joined
    await citizen.send(pair.cid, "Jeg har hatt feber i tre døgn. Æ, ø og å!")
    b = await doctor.send(pair.cid, "Ta kontakt med fastlegen din.")
    await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "p", "data": tiny_png()})
    await citizen.call("read", {"consultation_id": pair.cid, "up_to_id": b["id"]})
    r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/end", json={"outcome": "physical-followup"},
                            headers=bearer(pair.doctor))
    assert r.status == 200, await r.text()

    base = f"/api/v1/consultations/{pair.cid}/transcript"
    r = await chat_app.get(base, headers=bearer(pair.doctor))
    assert r.status == 200, await r.text()
    t = await r.json()
    assert t["consultation_id"] == pair.cid and t["outcome"] == "physical-followup" and t["ended_at"]
    assert [m["text"] for m in t["messages"]] == ["Jeg har hatt feber i tre døgn. Æ, ø og å!",
                                                 "Ta kontakt med fastlegen din.", ""]
    assert t["messages"][2]["attachment"]["content_type"] == "image/png"
    assert {p["role"] for p in t["participants"]} == {"citizen", "clinician"}
    assert t["reads"] == {pair.citizen_pid: b["id"]}

    r = await chat_app.get(base + "?format=text", headers=bearer(pair.doctor))
    text = await r.text()
    assert r.content_type == "text/plain" and "Utfall: fysisk oppfølging" in text
    assert "Kari Nordmann (innbygger):" in text and "Æ, ø og å!" in text and "[vedlegg:" in text

    r = await chat_app.get(base + "?format=pdf", headers=bearer(pair.doctor))
    pdf = await r.read()
    assert r.content_type == "application/pdf" and pdf.startswith(b"%PDF") and len(pdf) > 1000

    r = await chat_app.get(base + "?format=docx", headers=bearer(pair.doctor))
    assert r.status == 422 and (await r.json())["error"] == "invalid_format"
    # The citizen takes part but does not export the record; outsiders do not even see it exists.
    assert (await chat_app.get(base, headers=bearer(pair.citizen))).status == 403
    outsider = await dev_token(chat_app, "nosy", "clinician")
    assert (await chat_app.get(base, headers=bearer(outsider))).status == 404

    audit = await chat_app.server.app[STORE].audit.for_consultation("oslo", pair.cid)
    exports = [e.fields for e in audit if e.fields["action"] == Action.TRANSCRIPT_EXPORTED.value]
    assert [e["format"] for e in exports] == ["json", "text", "pdf"]
    assert all("feber" not in json.dumps(e.fields) for e in audit)  # no message text in the audit trail


async def test_after_the_end_the_chat_is_readable_but_closed(chat_app, joined):
    pair, _doctor, citizen = joined
    await citizen.send(pair.cid, "takk")
    await chat_app.post(f"/api/v1/consultations/{pair.cid}/end", json={"outcome": "resolved"},
                        headers=bearer(pair.doctor))
    [ended] = await citizen.wait_for("ended")
    assert ended == {"consultation_id": pair.cid, "outcome": "resolved"}
    ack = await citizen.send(pair.cid, "en ting til")
    assert ack["error"] == "consultation_ended"
    again = await connect(base_url(chat_app), pair.citizen)
    try:
        ack = await again.call("join", {"consultation_id": pair.cid})
        assert ack["state"] == "ended" and [m["text"] for m in ack["history"]] == ["takk"]
    finally:
        await again.close()


async def test_transcript_of_a_consultation_without_messages(chat_app):
    pair = await consultation(chat_app)
    r = await chat_app.get(f"/api/v1/consultations/{pair.cid}/transcript?format=text", headers=bearer(pair.doctor))
    assert r.status == 200 and "(ingen meldinger)" in await r.text()
