"""No patient data in logs: names, national ids, reasons and phone numbers never reach a log line."""

import logging

from tests.conftest import bearer, dev_token

NAME, NATIONAL_ID, REASON, PHONE = "Kari Hemmelignavn", "01019012345", "hemmelig-plage", "+47 987 65 432"


async def test_a_whole_flow_logs_no_patient_data(app_client, caplog):
    caplog.set_level(logging.DEBUG)
    citizen = await dev_token(app_client, NATIONAL_ID, "citizen", name=NAME)
    doctor = await dev_token(app_client, "hpr-1", "clinician")
    q = "/api/v1/tenants/oslo/services/nettlege/queue"
    await app_client.post(q, json={"channel": "phone", "reason": REASON, "callback_phone": PHONE},
                          headers=bearer(citizen))
    # bad input echoing the same data back must not log it either
    await app_client.post(q, json={"channel": "phone", "reason": REASON * 50, "callback_phone": PHONE},
                          headers=bearer(citizen))
    await app_client.post(q, json={"channel": "video", "reason": REASON, "extra": NAME}, headers=bearer(citizen))
    taken = await (await app_client.post(f"{q}/take", headers=bearer(doctor))).json()
    cid = taken["consultation_id"]
    await app_client.get(f"/api/v1/consultations/{cid}", headers=bearer(citizen))
    await app_client.post(f"/api/v1/consultations/{cid}/sms", json={"phone": PHONE, "url": "http://x/#/invite/y"},
                          headers=bearer(doctor))
    await app_client.post(f"/api/v1/consultations/{cid}/end", json={"outcome": "resolved"}, headers=bearer(doctor))
    logged = caplog.text
    assert caplog.records  # the flow did log something (warnings, requests), just not the patient's data
    for secret in (NAME, NATIONAL_ID, REASON, PHONE, "987 65 432"):
        assert secret not in logged, secret
