"""The audit trail is sealed with a key that is not in Redis: whoever can write Redis cannot change, remove
or insert an entry unnoticed, even when they also rewrite everything else kept in Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from rooms.audit import Action
from rooms.audit_seal import AuditSealer, Checkpoint, FileCheckpoints
from rooms.keys import Keys

KEY = b"k" * 32


@pytest.fixture
def sealer(store, tmp_path, clock) -> AuditSealer:  # type: ignore[no-untyped-def]
    return AuditSealer(store.redis, KEY, FileCheckpoints(tmp_path / "audit-checkpoints.jsonl"), clock)


async def _fill(store, n: int = 5) -> list[str]:
    return [await store.audit.record("oslo", Action.CONSULTATION_VIEWED, actor=f"d{i}", role="clinician",
                                     consultation_id="c_1") for i in range(n)]


async def _rewrite(store, change: dict[str, dict[str, str]]) -> None:
    """What someone with write access to Redis could do: rewrite the stream with the same ids."""
    stream = Keys("oslo").audit()
    rows = await store.redis.xrange(stream)
    await store.redis.delete(stream)
    for entry_id, fields in rows:
        await store.redis.xadd(stream, {**fields, **change.get(entry_id, {})}, id=entry_id)


async def test_intact_trail_verifies_and_checkpoints_go_to_the_file(store, sealer, tmp_path):
    await _fill(store)
    cp = await sealer.seal("oslo")
    assert cp is not None and cp.count == 5
    assert await sealer.seal("oslo") is None  # nothing new
    assert await sealer.verify("oslo") == []
    [line] = (tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()
    assert json.loads(line)["count"] == 5 and json.loads(line)["sig"]
    assert len(await store.audit.for_consultation("oslo", "c_1")) == 5
    await _fill(store, 2)  # appended since: not yet sealed, not an error
    assert await sealer.verify("oslo") == []
    assert (await sealer.seal("oslo")).count == 7 and await sealer.verify("oslo") == []


async def test_changed_entry_is_found_even_with_every_redis_mac_rewritten(store, sealer):
    ids = await _fill(store)
    await sealer.seal("oslo")
    await _rewrite(store, {ids[2]: {"actor": "someone-else"}})
    assert ids[2] in await sealer.verify("oslo")
    # The attacker also recomputes every MAC kept in Redis (without the key they can only guess one).
    macs = Keys("oslo").audit_macs()
    prev = ""
    for entry_id, fields in await store.redis.xrange(Keys("oslo").audit()):
        prev = hashlib.sha256((prev + entry_id + json.dumps(fields, sort_keys=True)).encode()).hexdigest()
        await store.redis.hset(macs, entry_id, prev)
    problems = await sealer.verify("oslo")
    assert ids[2] in problems and f"checkpoint:{ids[4]}" in problems
    await store.redis.delete(macs)  # ... or drops them all
    assert ids[2] in await sealer.verify("oslo")


async def test_removed_and_truncated_entries_are_found(store, sealer):
    ids = await _fill(store)
    await sealer.seal("oslo")
    await store.redis.xdel(Keys("oslo").audit(), ids[1])
    assert ids[2] in await sealer.verify("oslo")
    # Truncation: the newest entries and their MACs gone -- the checkpoint outside Redis still names them.
    await store.redis.xdel(Keys("oslo").audit(), ids[3], ids[4])
    await store.redis.hdel(Keys("oslo").audit_macs(), ids[3], ids[4])
    assert f"checkpoint:{ids[4]}" in await sealer.verify("oslo")


async def test_inserted_entry_is_found(store, sealer):
    ids = await _fill(store)
    await sealer.seal("oslo")
    stream = Keys("oslo").audit()
    rows = await store.redis.xrange(stream)
    await store.redis.delete(stream)
    forged = "1-0"  # an entry slipped in before the others (stream ids only grow, so a rewrite is needed)
    await store.redis.xadd(stream, {"ts": "1", "action": "consultation.viewed", "actor": "x", "role": "clinician"},
                           id=forged)
    for entry_id, fields in rows:
        await store.redis.xadd(stream, fields, id=entry_id)
    problems = await sealer.verify("oslo")
    assert forged in problems and ids[0] in problems


async def test_a_new_process_with_the_same_key_and_checkpoints_finds_the_change(store, sealer, tmp_path, clock):
    ids = await _fill(store)
    await sealer.seal("oslo")
    await _rewrite(store, {ids[0]: {"role": "admin"}})
    later = AuditSealer(store.redis, KEY, FileCheckpoints(tmp_path / "audit-checkpoints.jsonl"), clock)
    assert ids[0] in await later.verify("oslo")
    wrong_key = AuditSealer(store.redis, b"x" * 32, FileCheckpoints(tmp_path / "audit-checkpoints.jsonl"), clock)
    assert any(p.startswith("checkpoint-signature") for p in await wrong_key.verify("oslo"))


async def test_a_forged_checkpoint_is_refused(store, sealer, tmp_path):
    await _fill(store)
    await sealer.seal("oslo")
    forged = Checkpoint("oslo", "0-1", 99, "00" * 32, 1.0, sig="ab" * 32)  # claims to cover the most entries
    FileCheckpoints(tmp_path / "audit-checkpoints.jsonl").write(forged)
    assert "checkpoint-signature:0-1" in await sealer.verify("oslo")


async def test_concurrent_writers_are_all_sealed(store, sealer):
    await asyncio.gather(*[store.audit.record("oslo", Action.TICKET_TAKEN, actor=f"d{i}", role="clinician")
                           for i in range(40)])
    assert len(await store.audit.entries("oslo")) == 40
    assert (await sealer.seal("oslo")).count == 40
    assert await sealer.verify("oslo") == []


async def test_entries_hold_no_names_or_text(store):
    await store.audit.record("oslo", Action.CONSULTATION_JOINED, actor="hpr-1", role="clinician",
                             consultation_id="c_1")
    (entry,) = await store.audit.entries("oslo")
    assert set(entry.fields) == {"ts", "action", "actor", "role", "consultation_id"}


async def test_a_read_of_a_citizens_data_is_in_their_index(store):
    await store.audit.record("oslo", Action.TICKET_READ, actor="hpr-1", role="clinician", ticket_id="t_1",
                             data_subject="cit-1")
    [entry] = await store.audit.for_subject("oslo", "cit-1")
    assert entry.fields["action"] == "ticket.read" and entry.fields["ticket_id"] == "t_1"
    assert await store.audit.for_subject("oslo", "cit-2") == []


async def test_repeated_reads_are_recorded_once_per_window(store, clock):
    for _ in range(5):
        await store.audit.record_access("oslo", Action.CONSULTATION_VIEWED, actor="d1", role="clinician",
                                        consultation_id="c_1")
    await store.audit.record_access("oslo", Action.CONSULTATION_VIEWED, actor="d2", role="clinician",
                                    consultation_id="c_1")
    assert [e.fields["actor"] for e in await store.audit.for_consultation("oslo", "c_1")] == ["d1", "d2"]
