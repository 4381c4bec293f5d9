"""Sealing and verifying the audit trail with a key that is not in Redis.

The sealer walks each tenant's audit stream in order and chains an HMAC-SHA256 over it:
`mac_i = HMAC(key, mac_{i-1} | entry id | canonical JSON of the entry)`, starting from a per-tenant genesis
MAC. It stores each entry's MAC in Redis (`Keys.audit_macs`, to point at the entry that was changed) and, after
every round that sealed something, appends a signed checkpoint `{tenant, last_id, count, mac, ts, sig}` to a
sink outside Redis (a JSON-lines file). `verify` trusts only the key and the checkpoints: it recomputes the
chain from the stream and reports

- an entry whose stored MAC does not match its content and predecessor (changed, or its predecessor removed);
- an entry before the last checkpoint without a MAC (inserted);
- a checkpoint whose entry is gone, whose position moved or whose chain value differs (removed, truncated, or
  rewritten together with the MACs in Redis, which needs the key to do unnoticed).

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
    def read(self, tenant: str) -> list[Checkpoint]: ...


class FileCheckpoints:
    """Checkpoints as JSON lines appended to a file (one short line per write: atomic with O_APPEND)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, cp: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(cp), separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self, tenant: str) -> list[Checkpoint]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                d = json.loads(line)
                if d.get("tenant") == tenant:
                    out.append(Checkpoint(**d))
            except (ValueError, TypeError):
                out.append(Checkpoint(tenant, "unreadable", -1, "", 0.0))  # reported by verify
        return out


class MemoryCheckpoints:
    """Checkpoints kept in this process only (development and tests without a configured file)."""

    def __init__(self) -> None:
        self._items: list[Checkpoint] = []

    def write(self, cp: Checkpoint) -> None:
        self._items.append(cp)

    def read(self, tenant: str) -> list[Checkpoint]:
        return [cp for cp in self._items if cp.tenant == tenant]


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

    def _trusted(self, tenant: str) -> tuple[list[Checkpoint], list[str]]:
        good, bad = [], []
        for cp in self.sink.read(tenant):
            if hmac.compare_digest(cp.sig, self._sign(cp)):
                good.append(cp)
            else:
                bad.append(f"checkpoint-signature:{cp.last_id}")
        return good, bad

    def _start(self, tenant: str) -> tuple[str, int, str]:
        if tenant in self._state:
            return self._state[tenant]
        good, _ = self._trusted(tenant)
        if good:
            last = max(good, key=lambda cp: cp.count)
            return last.last_id, last.count, last.mac
        return "", 0, self.genesis(tenant)

    async def seal(self, tenant: str) -> Checkpoint | None:
        """Chain the entries appended since the last seal; write a checkpoint if there were any."""
        k = Keys(tenant)
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            last_id, count, mac = self._start(tenant)
            sealed_any = False
            while True:
                rows = await self._r.xrange(k.audit(), min=f"({last_id}" if last_id else "-", count=BATCH)
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
        checkpoints, problems = self._trusted(tenant)
        by_id = {cp.last_id: cp for cp in checkpoints}
        sealed_upto = max((cp.count for cp in checkpoints), default=0)
        seen: set[str] = set()
        prev_stored = true_mac = self.genesis(tenant)
        position = 0
        last_id = ""
        while True:
            rows = await self._r.xrange(k.audit(), min=f"({last_id}" if last_id else "-", count=BATCH)
            if not rows:
                break
            stored_macs = await self._r.hmget(k.audit_macs(), [entry_id for entry_id, _ in rows])
            for (entry_id, fields), stored in zip(rows, stored_macs, strict=True):
                position += 1
                expected = self._mac(prev_stored, entry_id, fields)
                if stored is None:
                    if position <= sealed_upto:
                        problems.append(entry_id)  # inserted after sealing (or its MAC removed)
                elif not hmac.compare_digest(stored, expected):
                    problems.append(entry_id)
                true_mac = self._mac(true_mac, entry_id, fields)
                cp = by_id.get(entry_id)
                if cp is not None:
                    seen.add(entry_id)
                    if cp.count != position or not hmac.compare_digest(cp.mac, true_mac):
                        problems.append(f"checkpoint:{entry_id}")
                prev_stored = stored or expected
            last_id = rows[-1][0]
        problems += [f"checkpoint:{cp.last_id}" for cp in checkpoints if cp.last_id not in seen]
        return problems
