"""Chat benchmark: N concurrent chat consultations (two Socket.IO clients each) on one nettlege process.

    python -m load_tests.chat_bench --consultations 1000 --duration 20

What runs where (all on 127.0.0.1):
- a private redis-server (started here, on a free port);
- the server: one `nettlege serve` process with REDIS_URL set (so python-socketio's AsyncRedisManager is in the
  path, as in production), pinned to CPU 0 when the machine has more than one;
- the load: `--workers` load-generator processes (python-socketio AsyncClient over WebSocket), pinned to the
  other CPUs, each holding whole consultations so sender and receiver share a clock.
Consultations are created through the store (setup is not what is measured); tokens are dev JWTs.

In each consultation the two sides take turns sending one message every `--interval` seconds (the first send
of each consultation is staggered over one interval). Measured per message: send -> ack (stored in Redis) and
send -> delivered to the other participant's client (the broadcast). `lost` counts acked messages the other
side never received by the end; `missing_after_resync` the ones still missing after it asked `history`.
The baseline in the same run: `whoami` round trips on the same connections (Socket.IO with no Redis work).
Appends one JSON line to load_tests/results/chat_bench.jsonl; times in seconds, CPU in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import time
from typing import Any

import psutil

from . import harness
from .clients import ChatClient

ORIGIN = "http://bench.nettlege.test"
MASTER_KEY = base64.b64encode(b"b" * 32).decode()


async def create_consultations(redis_url: str, n: int) -> list[dict[str, str]]:
    from rooms.models import ParticipantState, Role
    from rooms.store import Store, connect

    store = Store(connect(redis_url))
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> dict[str, str]:
        async with sem:
            c = await store.consultations.create(harness.TENANT, harness.SERVICE, creator=f"dr{i}",
                                                 creator_role=Role.CLINICIAN, creator_name=f"Dr {i}")
            await store.consultations.add_participant(harness.TENANT, c.id, subject=f"cit{i}", role=Role.CITIZEN,
                                                      display_name=f"Innbygger {i}",
                                                      state=ParticipantState.ADMITTED)
            return {"cid": c.id, "doctor": harness.dev_token(f"dr{i}", "clinician", f"Navn dr{i}"),
                    "citizen": harness.dev_token(f"cit{i}", "citizen", f"Navn cit{i}")}

    out = await asyncio.gather(*[one(i) for i in range(n)])
    await store.close()
    return list(out)


# --- the load generator (one process) ---------------------------------------------------------------

class ChatLoad:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.deliver_lat: list[float] = []
        self.delivered: set[str] = set()
        self.clients: list[tuple[dict[str, str], ChatClient, ChatClient]] = []

    def _delivered(self, key: str, seconds: float) -> None:
        if key not in self.delivered:
            self.delivered.add(key)
            self.deliver_lat.append(seconds)

    async def setup(self, base: str, consultations: list[dict[str, str]], connect_concurrency: int,
                    ) -> dict[str, Any]:
        import aiohttp

        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sem = asyncio.Semaphore(connect_concurrency)

        async def one(c: dict[str, str]) -> None:
            pair = []
            for token, role in ((c["doctor"], "clinician"), (c["citizen"], "citizen")):
                client = ChatClient(self.http, base, token, role, self.sent_at, self._delivered)
                async with sem:
                    await client.join(c["cid"], ORIGIN)
                pair.append(client)
            self.clients.append((c, pair[0], pair[1]))

        t0 = time.perf_counter()
        await asyncio.gather(*[one(c) for c in consultations])
        # The clients' own garbage collection must not show up as server latency: keep what setup built out of
        # the collector's way and collect young objects only during the bounded run.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1_000_000)
        return {"ready": len(self.clients), "setup_s": time.perf_counter() - t0}

    async def go(self, duration: float, interval: float) -> dict[str, Any]:
        whoami: list[float] = []
        for _, doctor, _ in self.clients[: min(200, len(self.clients))]:  # the baseline, before the load
            t = time.perf_counter()
            await doctor.sio.call("whoami", timeout=10)
            whoami.append(time.perf_counter() - t)
        ack_lat: list[float] = []
        acked: dict[str, tuple[str, str]] = {}  # key -> (consultation id, message id)
        errors: dict[str, int] = {}
        stop_at = time.perf_counter() + duration

        async def converse(i: int, c: dict[str, str], doctor: ChatClient, citizen: ChatClient) -> None:
            await asyncio.sleep(interval * (i / max(1, len(self.clients))))
            seq = 0
            while time.perf_counter() < stop_at:
                key = f"{c['cid']}:{seq}"
                t = time.perf_counter()
                try:
                    ack, seconds = await (doctor if seq % 2 == 0 else citizen).send(c["cid"], f"m{seq}", key)
                    if ack.get("ok"):
                        ack_lat.append(seconds)
                        acked[key] = (c["cid"], ack["id"])
                    else:
                        errors[ack.get("error", "?")] = errors.get(ack.get("error", "?"), 0) + 1
                except Exception as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                seq += 1
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t)))

        started = time.perf_counter()
        await asyncio.gather(*[converse(i, c, d, z) for i, (c, d, z) in enumerate(self.clients)])
        wall = time.perf_counter() - started
        await asyncio.sleep(2.0)  # stragglers
        lost = [k for k in acked if k not in self.delivered]
        # Resync: what a client does after missing broadcasts. Everything acked must be in the stream.
        by_cid: dict[str, set[str]] = {}
        for k in lost:
            by_cid.setdefault(acked[k][0], set()).add(acked[k][1])
        citizens = {c["cid"]: z for c, _, z in self.clients}
        missing = 0
        for cid, ids in by_cid.items():
            hist = await citizens[cid].sio.call("history", {"consultation_id": cid, "after_id": None}, timeout=30)
            missing += len(ids - {m["id"] for m in hist.get("messages", [])})
        return {"ack": ack_lat, "deliver": self.deliver_lat, "sent": len(ack_lat) + sum(errors.values()),
                "acked": len(acked), "delivered": len(self.delivered), "lost": len(lost),
                "missing_after_resync": missing, "errors": errors, "wall_s": wall, "whoami": whoami}

    async def close(self) -> None:
        for _, d, z in self.clients:
            await d.close()
            await z.close()
        await self.http.close()


def load_generator() -> dict[str, Any]:
    load = ChatLoad()
    return {"setup": load.setup, "go": load.go, "quit": load.close}


# --- the driver -------------------------------------------------------------------------------------

def run(consultations: int, duration: float, interval: float, workers: int, connect_concurrency: int,
        pin_server: bool = True) -> dict[str, Any]:
    env = {"NETTLEGE_ALLOWED_ORIGINS": ORIGIN, "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY}
    with harness.pinned_server(env=env) as bench:
        server, redis_url, rpid = bench.server, bench.redis_url, bench.redis_pid
        server_cpus, load_cpus = bench.server_cpus, bench.load_cpus
        if not pin_server:  # let the OS place everything (shared machines)
            server_cpus = load_cpus = sorted(set(server_cpus) | set(load_cpus))
            harness.pin(server.proc.pid, server_cpus)
            harness.pin(rpid, load_cpus)
        t0 = time.perf_counter()
        convs = asyncio.run(create_consultations(redis_url, consultations))
        create_s = time.perf_counter() - t0
        loads = [harness.Worker(load_generator, load_cpus) for _ in range(workers)]
        try:
            for w, load in enumerate(loads):
                load.send("setup", base=server.base, consultations=convs[w::workers],
                          connect_concurrency=connect_concurrency)
            ready = [load.receive(600) for load in loads]
            procs = {"server": psutil.Process(server.proc.pid), "redis": psutil.Process(rpid) if rpid else None,
                     **{f"load{i}": psutil.Process(load.pid) for i, load in enumerate(loads)}}
            for p in procs.values():
                if p is not None:
                    p.cpu_percent(None)
            rss_before = procs["server"].memory_info().rss
            load_before = os.getloadavg()[0]
            psutil.cpu_percent(None)
            t_measure = time.perf_counter()
            for load in loads:
                load.send("go", duration=duration, interval=interval)
            results = [load.receive(duration + 600) for load in loads]
            measured_s = time.perf_counter() - t_measure
            machine_busy = psutil.cpu_percent(None) * (os.cpu_count() or 1)  # % of one core, all processes
            cpu = {name: p.cpu_percent(None) if p is not None else None for name, p in procs.items()}
            rss = procs["server"].memory_info().rss
        finally:
            for load in loads:
                load.close()
    ack = [x for r in results for x in r["ack"]]
    deliver = [x for r in results for x in r["deliver"]]
    whoami = [x for r in results for x in r["whoami"]]
    wall = max(r["wall_s"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    acked = sum(r["acked"] for r in results)
    load_cpu = sum(v or 0 for k, v in cpu.items() if k.startswith("load"))
    return {
        "consultations": consultations, "clients": 2 * consultations, "duration_s": duration,
        "interval_s": interval, "workers": workers,
        "setup_create_s": round(create_s, 2), "setup_connect_join_s": round(max(r["setup_s"] for r in ready), 2),
        "sent": sum(r["sent"] for r in results), "acked": acked,
        "delivered": sum(r["delivered"] for r in results), "lost": sum(r["lost"] for r in results),
        "missing_after_resync": sum(r["missing_after_resync"] for r in results), "errors": errors,
        "messages_per_s": round(acked / wall, 1), "deliveries_per_s": round(len(deliver) / wall, 1),
        "ack_p50_s": harness.percentile(ack, 50), "ack_p99_s": harness.percentile(ack, 99),
        "deliver_p50_s": harness.percentile(deliver, 50), "deliver_p99_s": harness.percentile(deliver, 99),
        "deliver_max_s": max(deliver) if deliver else None,
        "baseline_whoami_rtt_p50_s": harness.percentile(whoami, 50),
        "baseline_whoami_rtt_p99_s": harness.percentile(whoami, 99),
        "server_cpu_pct": cpu["server"], "redis_cpu_pct": cpu["redis"], "load_cpu_pct": load_cpu,
        # CPU the server spent per stored message (incl. its share of pings and pub/sub): less sensitive to a
        # busy machine than the latencies are.
        "server_cpu_ms_per_message": round(cpu["server"] / 100 * measured_s * 1000 / max(1, acked), 3),
        "machine_cpu_busy_pct": round(machine_busy, 1),
        "other_processes_cpu_pct": round(machine_busy - cpu["server"] - (cpu["redis"] or 0) - load_cpu, 1),
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "server_rss_mb": round(rss / 2**20, 1), "server_rss_growth_mb": round((rss - rss_before) / 2**20, 1),
        "where": {"server": f"1 nettlege serve process (REDIS_URL set, AsyncRedisManager) on CPUs {server_cpus}",
                  "load": f"{workers} load-generator process(es) on CPUs {load_cpus}",
                  "redis": f"private redis-server (no AOF) on CPUs {load_cpus}", "network": "127.0.0.1"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of conversation (bounded)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between messages per consultation")
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--no-pin", action="store_true", help="let the OS place server and load (shared machines)")
    args = parser.parse_args()
    if not 1 <= args.consultations <= 5000 or not 1 <= args.duration <= 600:
        parser.error("--consultations 1..5000, --duration 1..600")
    started = harness.machine()
    harness.record("chat_bench", run(args.consultations, args.duration, args.interval, args.workers,
                             args.connect_concurrency, pin_server=not args.no_pin), started)


if __name__ == "__main__":
    main()
