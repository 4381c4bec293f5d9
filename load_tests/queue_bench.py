"""Queue benchmark: join-queue and take-next over HTTP against `nettlege serve`, with a long queue and many
clinicians, and the Redis round trips each operation costs.

    python -m load_tests.queue_bench [--tickets 10000] [--clinicians 100] [--runs 3]

One `nettlege serve` process on CPU 0 (taskset) with a private redis-server; this process (the aiohttp load
generator) and Redis on the other CPU. Per run: `--tickets` tickets are put in the queue first (through the
store, to keep setup short); then citizens join over HTTP `--clinicians` at a time and `--clinicians`
clinicians call take-next concurrently (throughput and latency under load), then the same operations one at a
time (unloaded latency). Only successful requests are timed; every other answer is counted by status in
`errors`, never as latency. The baseline, measured in the same run, is one bare Redis round trip (ZPOPMIN)
from this process.

Round trips: a second `nettlege serve` whose REDIS_URL points at a counting proxy (`harness.RedisTurnCounter`)
serves 100 joins and 100 takes one at a time, then `--clinicians` clinicians taking at once (a take-next whose
view of the queue's head went stale meanwhile runs its script again: that shows here; a first burst on the empty
queue opens the server's Redis connections before, so their handshakes are not counted); the proxy counts
request/answer turns on every connection (a pipeline, MULTI/EXEC or Lua script is one), less what the idle server
does in the same time (heartbeats). Results are appended to load_tests/results/queue_bench.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import redis

from rooms.models import Channel, Priority, Role
from rooms.store import Store, connect

from .harness import (
    SERVICE,
    TENANT,
    RedisTurnCounter,
    auth,
    cpu_plan,
    dev_token,
    machine,
    median,
    nettlege_server,
    percentile,
    pin,
    r4,
    record,
    redis_pid,
    redis_server,
    taskset,
)

PRIORITIES = [Priority.GREEN, Priority.GREEN, Priority.YELLOW, Priority.RED]
QUEUE = f"/api/v1/tenants/{TENANT}/services/{SERVICE}/queue"


async def prefill(redis_url: str, n: int) -> None:
    store = Store(connect(redis_url))
    sem = asyncio.Semaphore(32)  # well under the pool (64), so no join waits for a connection on a busy machine

    async def one(i: int) -> None:
        async with sem:
            await store.queue.join(TENANT, SERVICE, owner=f"pre{i}", owner_role=Role.CITIZEN, owner_name="x",
                                   channel=Channel.VIDEO, reason="r", priority=PRIORITIES[i % 4])

    await asyncio.gather(*[one(i) for i in range(n)])
    await store.close()


def r6(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


async def redis_floor(redis_url: str, n: int = 2000) -> list[float]:
    r = connect(redis_url)
    key = "nl:{bench}:floor"
    await r.zadd(key, {f"m{i}": i for i in range(n)})
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await r.zpopmin(key)
        out.append(time.perf_counter() - t0)
    await r.aclose()
    return out


class Ops:
    """Join and take-next over HTTP: latency of successful requests, every other answer counted by status."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.latency: dict[str, list[float]] = {"join": [], "take": []}
        self.errors: Counter[str] = Counter()

    async def _call(self, op: str, path: str, token: str, body: Any = None) -> None:
        t0 = time.perf_counter()
        try:
            async with self.http.post(self.base + path, json=body, headers=auth(token)) as r:
                await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"{op} {type(exc).__name__}"] += 1
            return
        if status in (200, 201):
            self.latency[op].append(time.perf_counter() - t0)
        else:
            self.errors[f"{op} {status}"] += 1

    async def join(self, token: str) -> None:
        await self._call("join", QUEUE, token, {"channel": "video", "reason": "hoste"})

    async def take(self, token: str, n: int = 1) -> None:
        for _ in range(n):
            await self._call("take", f"{QUEUE}/take", token)


async def run_once(base: str, redis_url: str, args: argparse.Namespace, run: int) -> dict[str, Any]:
    redis.Redis.from_url(redis_url).flushdb()
    await prefill(redis_url, args.tickets)
    tag = f"r{run}-{int(time.time())}"
    doctors = [dev_token(f"dr-{tag}-{i}", "clinician") for i in range(args.clinicians)]
    citizens = [dev_token(f"cit-{tag}-{i}", "citizen") for i in range(args.joins)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        loaded = Ops(http, base)
        t0 = time.perf_counter()
        for i in range(0, args.joins, args.clinicians):  # joins arrive `clinicians` at a time
            await asyncio.gather(*[loaded.join(t) for t in citizens[i:i + args.clinicians]])
        join_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*[loaded.take(t, args.takes // args.clinicians) for t in doctors])
        take_wall = time.perf_counter() - t0
        solo = Ops(http, base)  # the same operations one at a time
        for i in range(200):
            await solo.join(dev_token(f"solo-{tag}-{i}", "citizen"))
        for t in doctors[:10]:
            await solo.take(t, 20)
    floor = await redis_floor(redis_url)
    return {
        **{f"{op}_p{p}_s": r4(percentile(loaded.latency[op], p)) for op in ("join", "take") for p in (50, 99)},
        "join_p50_unloaded_s": r6(percentile(solo.latency["join"], 50)),
        "take_p50_unloaded_s": r6(percentile(solo.latency["take"], 50)),
        "joins_per_s": round(len(loaded.latency["join"]) / join_wall, 1),
        "takes_per_s": round(len(loaded.latency["take"]) / take_wall, 1),
        "redis_floor_p50_s": r6(percentile(floor, 50)),
        "errors": dict(loaded.errors + solo.errors),
    }


async def round_trips(base: str, counter: RedisTurnCounter, redis_url: str, clinicians: int,
                      n: int = 100) -> dict[str, Any]:
    """Redis round trips per join and per take-next, one operation at a time, then per take-next with `clinicians`
    clinicians taking at once."""
    tag = str(int(time.time()))
    async with aiohttp.ClientSession() as http:
        ops = Ops(http, base)
        t0, idle0 = time.monotonic(), counter.turns
        await asyncio.sleep(2.0)
        idle_rate = (counter.turns - idle0) / (time.monotonic() - t0)  # heartbeats and watchers of an idle server
        out: dict[str, Any] = {"idle_round_trips_per_s": round(idle_rate, 2)}
        for op in ("join", "take"):
            t0, turns0 = time.monotonic(), counter.turns
            for i in range(n):
                if op == "join":
                    await ops.join(dev_token(f"rt-{tag}-{i}", "citizen"))
                else:
                    await ops.take(dev_token(f"rtdr-{tag}-{i % 10}", "clinician"))
            turns = counter.turns - turns0 - idle_rate * (time.monotonic() - t0)
            out[f"{op}_round_trips"] = round(turns / max(1, len(ops.latency[op])), 2)
        each = 5
        doctors = [dev_token(f"rtc-{tag}-{i}", "clinician") for i in range(clinicians)]
        # The server's Redis pool opens its connections under the first burst (each a few turns of handshake): let
        # that happen on the empty queue first, so the count below is the takes' own (stale-head retries included).
        await asyncio.gather(*[Ops(http, base).take(t) for t in doctors])
        concurrent = Ops(http, base)
        await prefill(redis_url, clinicians * each)  # straight into Redis, not counted
        t0, turns0 = time.monotonic(), counter.turns
        await asyncio.gather(*[concurrent.take(t, each) for t in doctors])
        turns = counter.turns - turns0 - idle_rate * (time.monotonic() - t0)
        out["take_round_trips_concurrent"] = round(turns / max(1, len(concurrent.latency["take"])), 2)
        out["round_trip_errors"] = dict(ops.errors + concurrent.errors)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    (server_cpus,), load_cpus = cpu_plan(1)
    pin_prefix = taskset(server_cpus)
    runs = []
    with redis_server() as redis_url:
        pin(redis_pid(redis_url), load_cpus)
        counter = RedisTurnCounter(redis_url)
        with nettlege_server(counter.url, prefix=pin_prefix) as counted:
            trips = await round_trips(counted.base, counter, redis_url, args.clinicians)
        with nettlege_server(redis_url, prefix=pin_prefix) as server:
            for i in range(args.runs):
                runs.append(await run_once(server.base, redis_url, args, i))
                print({"run": i + 1, **runs[-1]}, flush=True)
    # Sub-millisecond figures keep microseconds: the ratios below are taken from them, not from 0.1 ms roundings.
    figures = {k: r6(median([r[k] for r in runs])) for k in runs[0] if k != "errors"}
    floor = figures["redis_floor_p50_s"]
    errors: Counter[str] = Counter()
    for r in runs:
        errors.update(r["errors"])
    return {
        "tickets_waiting": args.tickets, "clinicians": args.clinicians, "runs": args.runs,
        "joins_per_run": args.joins, "takes_per_run": args.takes, **figures, **trips,
        "take_unloaded_over_redis_floor": round((figures["take_p50_unloaded_s"] or 0) / floor, 1) if floor else None,
        "join_unloaded_over_redis_floor": round((figures["join_p50_unloaded_s"] or 0) / floor, 1) if floor else None,
        "errors": dict(errors),
        "goals": {"take_unloaded_le_10x_floor": (figures["take_p50_unloaded_s"] or 99) <= 10 * (floor or 0),
                  "takes_per_s_ge_1000": (figures["takes_per_s"] or 0) >= 1000},
        "where": f"server: 1 nettlege serve on CPU {server_cpus}; load (this process) and private redis-server on "
                 f"{load_cpus}; 127.0.0.1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--clinicians", type=int, default=100)
    parser.add_argument("--joins", type=int, default=1000)
    parser.add_argument("--takes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = machine()
    record("queue_bench", asyncio.run(main_async(args)), started)


if __name__ == "__main__":
    main()
