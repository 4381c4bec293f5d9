"""The retention sweep deletes every key with personal data of a consultation past retention (and its place in
each participant's index), audited; younger ones stay; a finished ticket without a TTL gets one."""

from __future__ import annotations

import time

from chat.keys import ChatKeys
from rooms.keys import Keys
from signaling.appkeys import STORE
from signaling.chat_wiring import retention_round
from tests.chat.conftest import consultation
from tests.conftest import bearer

DAY = 86400


async def test_a_consultation_past_retention_is_deleted_with_its_indexes(chat_app, joined):
    pair, _doctor, citizen = joined
    app = chat_app.server.app
    store, k = app[STORE], Keys("oslo")
    assert (await citizen.send(pair.cid, "hei"))["ok"]
    r = await chat_app.post(f"/api/v1/consultations/{pair.cid}/end", json={"outcome": "resolved"},
                            headers=bearer(pair.doctor))
    assert r.status == 200
    young = await consultation(chat_app, tag="y")  # still open, created now
    subjects = await store.redis.hkeys(k.subjects(pair.cid))
    assert subjects
    for s in subjects:
        assert await store.redis.sismember(k.my_consultations(s), pair.cid)

    assert await retention_round(app, now=time.time() + 10 * DAY) == []  # not yet (30 days)
    deleted = await retention_round(app, now=time.time() + 31 * DAY)
    assert pair.cid in deleted and young.cid in deleted  # the open one too: created 31 days "ago"
    for key in (k.consultation(pair.cid), k.participants(pair.cid), k.subjects(pair.cid),
                ChatKeys("oslo").data_key(pair.cid)):
        assert not await store.redis.exists(key), key
    for s in subjects:
        assert not await store.redis.sismember(k.my_consultations(s), pair.cid)
    trail = [e.fields["action"] for e in await store.audit.for_consultation("oslo", pair.cid)]
    assert "chat.shredded" in trail and trail[-1] == "data.expired"
    r = await chat_app.get(f"/api/v1/consultations/{pair.cid}", headers=bearer(pair.doctor))
    assert r.status == 404
    assert await retention_round(app, now=time.time() + 32 * DAY) == []  # idempotent


async def test_a_finished_ticket_without_a_ttl_gets_one(chat_app):
    app = chat_app.server.app
    store, k = app[STORE], Keys("oslo")
    await store.redis.hset(k.ticket("t_old"), mapping={"id": "t_old", "state": "left"})
    await store.redis.hset(k.ticket("t_wait"), mapping={"id": "t_wait", "state": "waiting"})
    await retention_round(app)
    assert 0 < await store.redis.ttl(k.ticket("t_old")) <= 7 * DAY
    assert await store.redis.ttl(k.ticket("t_wait")) == -1  # still in the queue: kept
