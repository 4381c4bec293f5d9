"""The running app seals the audit trail into a checkpoint file and verifies it on a schedule, with a gauge and
an ERROR log line when someone with write access to Redis changed it."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp.test_utils import TestClient, TestServer

from rooms.audit import Action
from rooms.keys import Keys
from signaling.app import build_app
from signaling.appkeys import STORE
from signaling.audit_wiring import verify_all
from tests.conftest import close_app


async def test_the_app_verifies_the_trail_and_raises_the_alarm(make_config, redis_url, tmp_path, caplog):
    from rooms.store import connect

    r = connect(redis_url)
    await r.flushdb()
    await r.aclose()
    checkpoints = tmp_path / "audit.jsonl"
    app = TestClient(TestServer(build_app(make_config(audit_checkpoint_path=str(checkpoints),
                                                      audit_seal_interval_s=3600)), host="127.0.0.1"))
    await app.start_server()
    try:
        server_app = app.server.app
        store = server_app[STORE]
        # The background task verifies once at start-up, without being asked.
        for _ in range(500):
            if 'nettlege_audit_verify_ok{tenant="oslo"} 1.0' in await (await app.get("/metrics")).text():
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the start-up verification never reported")
        ids = [await store.audit.record("oslo", Action.CONSULTATION_VIEWED, actor=f"d{i}", role="clinician",
                                        consultation_id="c_1") for i in range(3)]
        assert (await verify_all(server_app))["oslo"] == []
        body = await (await app.get("/metrics")).text()
        assert 'nettlege_audit_verify_ok{tenant="oslo"} 1.0' in body
        assert 'nettlege_audit_last_verified_timestamp_seconds{tenant="oslo"}' in body
        lines = [json.loads(x) for x in checkpoints.read_text().splitlines()]
        assert any(cp["tenant"] == "oslo" and cp["last_id"] == ids[-1] for cp in lines)

        await store.redis.xdel(Keys("oslo").audit(), ids[0])
        with caplog.at_level(logging.ERROR, logger="signaling.audit_wiring"):
            assert (await verify_all(server_app))["oslo"]
        assert any(rec.getMessage() == "audit trail verification failed" and rec.tenant == "oslo"
                   for rec in caplog.records)
        body = await (await app.get("/metrics")).text()
        assert 'nettlege_audit_verify_ok{tenant="oslo"} 0.0' in body
    finally:
        await close_app(app)
