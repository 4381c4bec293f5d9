"""Sealing and verifying the audit trail with a key that is not in Redis.

The sealer walks each tenant's audit stream in order and chains an HMAC-SHA256 over it:
`mac_i = HMAC(key, mac_{i-1} | entry id | canonical JSON of the entry)`, starting from a per-tenant genesis
MAC. It stores each entry's MAC in Redis (`Keys.audit_macs`, to point at the entry that was changed) and, after
every round that sealed something, appends a signed checkpoint `{tenant, last_id, count, mac, ts, sig}` to a
sink outside Redis (a JSON-lines file). `verify` trusts only the key and the latest checkpoint (its chain value
covers every entry before it): it recomputes the chain from the stream and reports

- an entry whose stored MAC does not match its content and predecessor (changed, or its predecessor removed);
- an entry before the last checkpoint without a MAC (inserted);
- the checkpoint, when its entry is gone, its position moved or its chain value differs (removed, truncated,
  or rewritten together with the MACs in Redis, which needs the key to do unnoticed);
- a checkpoint whose signature does not hold (the file was edited).

Entries appended since the last seal are not covered yet: the sealer runs every few seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis

from .keys import Keys
from .redis_types import optional_texts, stream_entries

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tenant: str
    last_id: str
    count: int  # entries from the start of the stream up to and including last_id
    mac: str
    ts: float
    sig: str = ""

    def body(self) -> bytes:
        d = asdict(self)
        d.pop("sig")
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


class CheckpointSink(Protocol):
    def write(self, cp: Checkpoint) -> None: ...

    def latest(self, tenant: str) -> Checkpoint | None:
        """The checkpoint covering the most entries (the chain value there covers every entry before it)."""
        ...


class FileCheckpoints:
    """Checkpoints as JSON lines appended to a file (one short line per write: atomic with O_APPEND, so several
    processes may share the file). Read incrementally: only lines appended since the last look are parsed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._latest: dict[str, Checkpoint] = {}

    def write(self, cp: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(cp), separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def latest(self, tenant: str) -> Checkpoint | None:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
            self._offset += end
            for line in chunk[:end].decode("utf-8", "replace").splitlines():
                try:
                    cp = Checkpoint(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # not a checkpoint: it cannot vouch for anything
                best = self._latest.get(cp.tenant)
                if best is None or cp.count >= best.count:
                    self._latest[cp.tenant] = cp
        return self._latest.get(tenant)


class MemoryCheckpoints:
    """Checkpoints kept in this process only (development and tests without a configured file)."""

    def __init__(self) -> None:
        self._latest: dict[str, Checkpoint] = {}

    def write(self, cp: Checkpoint) -> None:
        best = self._latest.get(cp.tenant)
        if best is None or cp.count >= best.count:
            self._latest[cp.tenant] = cp

    def latest(self, tenant: str) -> Checkpoint | None:
        return self._latest.get(tenant)


def _canonical(fields: dict[str, str]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class AuditSealer:
    def __init__(self, redis: aioredis.Redis, key: bytes, sink: CheckpointSink,
                 clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the audit key must be at least 32 bytes")
        self._r = redis
        self._key = key
        self.sink = sink
        self._clock = clock
        self._state: dict[str, tuple[str, int, str]] = {}  # tenant -> (last id, count, mac), as last sealed
        self._locks: dict[str, asyncio.Lock] = {}

    def _mac(self, prev: str, entry_id: str, fields: dict[str, str]) -> str:
        msg = f"{prev}|{entry_id}|{_canonical(fields)}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def genesis(self, tenant: str) -> str:
        return hmac.new(self._key, f"nettlege-audit-genesis|{tenant}".encode(), hashlib.sha256).hexdigest()

    def _sign(self, cp: Checkpoint) -> str:
        return hmac.new(self._key, cp.body(), hashlib.sha256).hexdigest()

    def _trusted(self, tenant: str) -> tuple[Checkpoint | None, list[str]]:
        """The latest checkpoint if its signature holds; else None and the problem (a forged or damaged file)."""
        cp = self.sink.latest(tenant)
        if cp is None or hmac.compare_digest(cp.sig, self._sign(cp)):
            return cp, []
        return None, [f"checkpoint-signature:{cp.last_id}"]

    def _start(self, tenant: str) -> tuple[str, int, str]:
        if tenant in self._state:
            return self._state[tenant]
        cp, _ = self._trusted(tenant)
        if cp is not None:
            return cp.last_id, cp.count, cp.mac
        return "", 0, self.genesis(tenant)

    async def seal(self, tenant: str) -> Checkpoint | None:
        """Chain the entries appended since the last seal; write a checkpoint if there were any."""
        k = Keys(tenant)
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            last_id, count, mac = self._start(tenant)
            sealed_any = False
            while True:
                rows = stream_entries(await self._r.xrange(k.audit(), min=f"({last_id}" if last_id else "-",
                                                           count=BATCH))
                if not rows:
                    break
                macs = {}
                for entry_id, fields in rows:
                    mac = self._mac(mac, entry_id, fields)
                    macs[entry_id] = mac
                    count += 1
                async with self._r.pipeline(transaction=False) as p:
                    for entry_id, value in macs.items():
                        p.hsetnx(k.audit_macs(), entry_id, value)  # never overwrite: a mismatch is evidence
                    await p.execute()
                last_id, sealed_any = rows[-1][0], True
            self._state[tenant] = (last_id, count, mac)
            if not sealed_any:
                return None
            cp = Checkpoint(tenant, last_id, count, mac, round(self._clock(), 3))
            cp = Checkpoint(**{**asdict(cp), "sig": self._sign(cp)})
            self.sink.write(cp)
            return cp

    async def verify(self, tenant: str) -> list[str]:
        """Recompute the chain; the ids of bad entries and checkpoints (empty when the trail is intact)."""
        k = Keys(tenant)
        checkpoint, problems = self._trusted(tenant)
        sealed_upto = checkpoint.count if checkpoint else 0
        seen = False
        prev_stored = true_mac = self.genesis(tenant)
        position = 0
        last_id = ""
        while True:
            rows = stream_entries(await self._r.xrange(k.audit(), min=f"({last_id}" if last_id else "-",
                                                       count=BATCH))
            if not rows:
                break
            stored_macs = optional_texts(await self._r.hmget(k.audit_macs(), [entry_id for entry_id, _ in rows]))
            for (entry_id, fields), stored in zip(rows, stored_macs, strict=True):
                position += 1
                expected = self._mac(prev_stored, entry_id, fields)
                if stored is None:
                    if position <= sealed_upto:
                        problems.append(entry_id)  # inserted after sealing (or its MAC removed)
                elif not hmac.compare_digest(stored, expected):
                    problems.append(entry_id)
                true_mac = self._mac(true_mac, entry_id, fields)
                if checkpoint is not None and entry_id == checkpoint.last_id:
                    seen = True
                    if checkpoint.count != position or not hmac.compare_digest(checkpoint.mac, true_mac):
                        problems.append(f"checkpoint:{entry_id}")
                prev_stored = stored or expected
            last_id = rows[-1][0]
        if checkpoint is not None and not seen:
            problems.append(f"checkpoint:{checkpoint.last_id}")  # its entry is gone: removed or truncated
        return problems
