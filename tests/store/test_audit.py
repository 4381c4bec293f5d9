"""The audit trail is hash-chained: any changed, removed or truncated entry is found."""

import asyncio

from rooms.audit import Action
from rooms.keys import Keys


async def _fill(store, n: int = 5) -> list[str]:
    return [await store.audit.record("oslo", Action.CONSULTATION_VIEWED, actor=f"d{i}", role="clinician",
                                     consultation_id="c_1") for i in range(n)]


async def test_intact_chain_verifies(store):
    await _fill(store)
    assert await store.audit.verify("oslo") == []
    assert len(await store.audit.for_consultation("oslo", "c_1")) == 5


async def test_changed_entry_is_found(store):
    ids = await _fill(store)
    # rewrite the stream with entry 2 altered, same ids: what someone with write access to Redis could do
    stream = Keys("oslo").audit()
    rows = await store.redis.xrange(stream)
    await store.redis.delete(stream)
    for entry_id, fields in rows:
        if entry_id == ids[2]:
            fields = {**fields, "actor": "someone-else"}
        await store.redis.xadd(stream, fields, id=entry_id)
    assert await store.audit.verify("oslo") == [ids[2]]


async def test_removed_entry_and_truncation_are_found(store):
    ids = await _fill(store)
    await store.redis.xdel(Keys("oslo").audit(), ids[1])
    assert await store.audit.verify("oslo") == [ids[2]]
    await store.redis.xdel(Keys("oslo").audit(), ids[4])
    assert "head" in await store.audit.verify("oslo")


async def test_concurrent_writers_form_one_chain(store):
    await asyncio.gather(*[store.audit.record("oslo", Action.TICKET_TAKEN, actor=f"d{i}", role="clinician")
                           for i in range(40)])
    assert len(await store.audit.entries("oslo")) == 40
    assert await store.audit.verify("oslo") == []


async def test_entries_hold_no_names_or_text(store):
    await store.audit.record("oslo", Action.CONSULTATION_JOINED, actor="hpr-1", role="clinician",
                             consultation_id="c_1")
    (entry,) = await store.audit.entries("oslo")
    assert set(entry.fields) == {"ts", "action", "actor", "role", "consultation_id", "prev", "hash"}


async def test_repeated_reads_are_recorded_once_per_window(store, clock):
    for _ in range(5):
        await store.audit.record_access("oslo", Action.CONSULTATION_VIEWED, actor="d1", role="clinician",
                                        consultation_id="c_1")
    await store.audit.record_access("oslo", Action.CONSULTATION_VIEWED, actor="d2", role="clinician",
                                    consultation_id="c_1")
    assert [e.fields["actor"] for e in await store.audit.for_consultation("oslo", "c_1")] == ["d1", "d2"]
