"""Queue benchmark: join-queue and take-next latency over HTTP with a long queue and many clinicians.

    python -m load_tests.queue_bench --tickets 10000 --clinicians 100 --runs 3

The server runs in its own process on a private real redis-server; this process is the load generator.
10,000 tickets are put in the queue first (through the store, to keep setup short); then, with that
queue waiting, citizens join over HTTP and 100 clinicians call take-next concurrently. The baseline,
measured in the same run, is one bare Redis round trip (ZPOPMIN) from this process: the floor any
queue operation pays. Prints one JSON object on its last line; times in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp

from rooms.models import Channel, Priority, Role
from rooms.store import Store, connect

from ._procs import flush, nettlege_server, percentile, redis_server

TENANT, SERVICE = "bench", "nettlege"
PRIORITIES = [Priority.GREEN, Priority.GREEN, Priority.YELLOW, Priority.RED]


async def _token(http: aiohttp.ClientSession, base: str, sub: str, role: str) -> str:
    async with http.post(f"{base}/api/v1/dev/token",
                         json={"sub": sub, "role": role, "tenant": TENANT, "name": sub}) as r:
        return (await r.json())["token"]


async def _prefill(redis_url: str, n: int) -> None:
    store = Store(connect(redis_url))
    sem = asyncio.Semaphore(200)

    async def one(i: int) -> None:
        async with sem:
            await store.queue.join(TENANT, SERVICE, owner=f"pre{i}", owner_role=Role.CITIZEN, owner_name="x",
                                   channel=Channel.VIDEO, reason="r", priority=PRIORITIES[i % 4])

    await asyncio.gather(*[one(i) for i in range(n)])
    await store.close()


async def _redis_floor(redis_url: str, n: int = 2000) -> list[float]:
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


async def _run_once(base: str, redis_url: str, tickets: int, clinicians: int, joins: int, takes: int) -> dict:
    flush(redis_url)
    await _prefill(redis_url, tickets)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        doc_tokens = [await _token(http, base, f"dr{i}", "clinician") for i in range(clinicians)]
        citizen_tokens = [await _token(http, base, f"cit{i}", "citizen") for i in range(joins)]
        join_lat: list[float] = []
        take_lat: list[float] = []
        statuses: dict[int, int] = {}

        async def join(tok: str) -> None:
            t0 = time.perf_counter()
            async with http.post(f"{base}/api/v1/tenants/{TENANT}/services/{SERVICE}/queue",
                                 json={"channel": "video", "reason": "hoste"},
                                 headers={"Authorization": f"Bearer {tok}"}) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            join_lat.append(time.perf_counter() - t0)

        async def clinician(tok: str, n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                async with http.post(f"{base}/api/v1/tenants/{TENANT}/services/{SERVICE}/queue/take",
                                     headers={"Authorization": f"Bearer {tok}"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                take_lat.append(time.perf_counter() - t0)

        # joins arrive 100 at a time while the queue holds `tickets`
        t_start = time.perf_counter()
        for i in range(0, joins, clinicians):
            await asyncio.gather(*[join(t) for t in citizen_tokens[i:i + clinicians]])
        join_wall = time.perf_counter() - t_start
        t_start = time.perf_counter()
        await asyncio.gather(*[clinician(t, takes // clinicians) for t in doc_tokens])
        take_wall = time.perf_counter() - t_start
        # the same operations one at a time: latency without queueing behind 99 others
        joins_concurrent, takes_concurrent = join_lat[:], take_lat[:]
        join_lat.clear()
        take_lat.clear()
        solo_tokens = [await _token(http, base, f"solo{i}", "citizen") for i in range(200)]
        for tok in solo_tokens:
            await join(tok)
        for tok in doc_tokens[:10]:
            await clinician(tok, 20)
        join_solo, take_solo = join_lat[:], take_lat[:]
        join_lat, take_lat = joins_concurrent, takes_concurrent
    floor = await _redis_floor(redis_url)
    return {
        "join_p50_s": percentile(join_lat, 50), "join_p99_s": percentile(join_lat, 99),
        "take_p50_s": percentile(take_lat, 50), "take_p99_s": percentile(take_lat, 99),
        "join_p50_unloaded_s": percentile(join_solo, 50), "take_p50_unloaded_s": percentile(take_solo, 50),
        "joins_per_s": len(join_lat) / join_wall, "takes_per_s": len(take_lat) / take_wall,
        "redis_floor_p50_s": percentile(floor, 50), "statuses": statuses,
    }


async def main_async(args: argparse.Namespace) -> dict:
    runs = []
    with redis_server() as redis_url, nettlege_server(redis_url) as (base, _proc):
        for i in range(args.runs):
            result = await _run_once(base, redis_url, args.tickets, args.clinicians, args.joins, args.takes)
            print(json.dumps({"run": i + 1, **result}), flush=True)
            runs.append(result)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return {
        "benchmark": "queue", "tickets_waiting": args.tickets, "clinicians": args.clinicians, "runs": args.runs,
        "joins_per_run": args.joins, "takes_per_run": args.takes,
        "join_p50_s": med("join_p50_s"), "join_p99_s": med("join_p99_s"),
        "take_p50_s": med("take_p50_s"), "take_p99_s": med("take_p99_s"),
        "join_p50_unloaded_s": med("join_p50_unloaded_s"), "take_p50_unloaded_s": med("take_p50_unloaded_s"),
        "joins_per_s": med("joins_per_s"), "takes_per_s": med("takes_per_s"),
        "redis_floor_p50_s": med("redis_floor_p50_s"),
        "take_unloaded_over_redis_floor": med("take_p50_unloaded_s") / med("redis_floor_p50_s"),
        "where": "server: 1 nettlege process; load: this process (aiohttp client); redis: private redis-server; "
                 "all on 127.0.0.1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--clinicians", type=int, default=100)
    parser.add_argument("--joins", type=int, default=1000)
    parser.add_argument("--takes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()
