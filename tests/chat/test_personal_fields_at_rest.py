"""Names, reasons and phone numbers are sealed at rest (rooms/crypto.py): a whole flow leaves none of them in
Redis in plaintext, and the API still answers with them to whoever may read them."""

from __future__ import annotations

import pytest

from rooms.crypto import FieldCipher
from rooms.models import Channel, Priority, Role, Ticket, TicketState
from tests.chat.conftest import base_url, connect
from tests.chat.test_encryption import _dump
from tests.conftest import bearer, dev_token

NAME, REASON, PHONE = "Kari Hemmeligsen", "brystsmerter-hemmelig", "+4799988877"
GUEST, DOCTOR = "Tolken Hemmelig", "Dr. Hemmelig Lege"


async def test_a_whole_flow_leaves_no_name_reason_or_phone_in_redis(chat_app, redis_url):
    citizen = await dev_token(chat_app, "cit-at-rest", "citizen", name=NAME)
    doctor = await dev_token(chat_app, "hpr-at-rest", "clinician", name=DOCTOR)
    r = await chat_app.post("/api/v1/tenants/oslo/services/nettlege/queue",
                            json={"channel": "phone", "reason": REASON, "callback_phone": PHONE},
                            headers=bearer(citizen))
    assert r.status == 201, await r.text()
    ticket_id = (await r.json())["ticket_id"]
    mine = await (await chat_app.get(f"/api/v1/tickets/{ticket_id}", headers=bearer(citizen))).json()
    assert mine["reason"] == REASON  # the owner reads it back in plaintext
    taken = await (await chat_app.post("/api/v1/tenants/oslo/services/nettlege/queue/take",
                                       headers=bearer(doctor))).json()
    cid = taken["consultation_id"]
    invite = await (await chat_app.post(f"/api/v1/consultations/{cid}/invites",
                                        json={"role": "interpreter", "lobby": False},
                                        headers=bearer(doctor))).json()
    guest = await connect(base_url(chat_app), invite["token"], display_name=GUEST)
    try:
        ack = await guest.call("join", {"consultation_id": cid})
        assert ack["ok"], ack
        names = {p["display_name"] for p in ack["participants"]}
        assert {NAME, DOCTOR, GUEST} <= names  # opened for those in the consultation
    finally:
        await guest.close()
    c = await (await chat_app.get(f"/api/v1/consultations/{cid}", headers=bearer(doctor))).json()
    assert {p["display_name"] for p in c["participants"]} >= {NAME, DOCTOR, GUEST}

    dump = await _dump(redis_url)
    for secret in (NAME, REASON, PHONE, GUEST, DOCTOR, "99988877"):
        assert secret.encode() not in dump, secret


def _ticket(tenant: str = "oslo") -> Ticket:
    return Ticket(id="t_1", tenant=tenant, service="nettlege", owner="cit", owner_role=Role.CITIZEN,
                  owner_name=NAME, channel=Channel.PHONE, reason=REASON, priority=Priority.GREEN,
                  enqueued_at=1.0, state=TicketState.WAITING, callback_phone=PHONE)


def test_a_sealed_field_opens_only_for_its_tenant_and_kind():
    cipher = FieldCipher(b"m" * 32)
    sealed = cipher.sealed_ticket(_ticket())
    assert NAME not in str(sealed) and REASON not in str(sealed) and PHONE not in str(sealed)
    assert cipher.opened_ticket(sealed) == _ticket()
    moved = Ticket(**{**{f: getattr(sealed, f) for f in sealed.__slots__}, "tenant": "bergen"})
    assert cipher.opened_ticket(moved).reason != REASON  # copied to another tenant: does not open
    assert cipher.open("oslo", "phone", sealed.reason) != REASON  # moved into another kind of field
    assert FieldCipher(b"x" * 32).open("oslo", "reason", sealed.reason) != REASON  # another master key
    assert FieldCipher(None).open("oslo", "name", "plain") == "plain"  # written before encryption: readable
    with pytest.raises(ValueError):
        FieldCipher(b"short")
