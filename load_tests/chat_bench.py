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
Prints one JSON object on its last line; times in seconds, CPU in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from typing import Any

ORIGIN = "http://bench.nettlege.test"
MASTER_KEY = base64.b64encode(b"b" * 32).decode()
SECRET = "bench-secret-" + "x" * 32  # what load_tests._procs.nettlege_server gives the server
TENANT, SERVICE = "bench", "nettlege"


def _dev_token(sub: str, role: str) -> str:
    import jwt

    from signaling.auth import DEV_ISSUER, LOCAL_AUDIENCE

    now = int(time.time())
    return jwt.encode({"iss": DEV_ISSUER, "sub": sub, "role": role, "tenant": TENANT, "name": f"Navn {sub}",
                       "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")


async def _create_consultations(redis_url: str, n: int) -> list[dict[str, str]]:
    from rooms.models import ParticipantState, Role
    from rooms.store import Store, connect

    store = Store(connect(redis_url))
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> dict[str, str]:
        async with sem:
            c = await store.consultations.create(TENANT, SERVICE, creator=f"dr{i}", creator_role=Role.CLINICIAN,
                                                 creator_name=f"Dr {i}")
            await store.consultations.add_participant(TENANT, c.id, subject=f"cit{i}", role=Role.CITIZEN,
                                                      display_name=f"Innbygger {i}",
                                                      state=ParticipantState.ADMITTED)
            return {"cid": c.id, "doctor": _dev_token(f"dr{i}", "clinician"),
                    "citizen": _dev_token(f"cit{i}", "citizen")}

    out = await asyncio.gather(*[one(i) for i in range(n)])
    await store.close()
    return list(out)


# --- the load generator (one process) ---------------------------------------------------------------

async def _worker_main(conn: Connection, base: str, consultations: list[dict[str, str]], interval: float,
                       connect_concurrency: int) -> None:
    import aiohttp
    import socketio

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sent_at: dict[str, float] = {}  # text key -> perf_counter at send
    ack_lat: list[float] = []
    deliver_lat: list[float] = []
    delivered: set[str] = set()
    acked: dict[str, tuple[str, str]] = {}  # key -> (cid, message id)
    errors: dict[str, int] = {}
    clients: list[tuple[dict[str, str], Any, Any]] = []
    sem = asyncio.Semaphore(connect_concurrency)

    def on_message(me: str):  # type: ignore[no-untyped-def]
        def handler(m: dict[str, Any]) -> None:
            key = m.get("text", "")
            if m.get("sender", {}).get("role") == me:  # our own message echoed back
                return
            t0 = sent_at.get(key)
            if t0 is not None and key not in delivered:
                delivered.add(key)
                deliver_lat.append(time.perf_counter() - t0)
        return handler

    async def open_client(token: str, role: str, cid: str) -> Any:
        sio = socketio.AsyncClient(reconnection=False, http_session=session)
        sio.on("message", on_message(role))
        async with sem:
            await sio.connect(base, auth={"token": token}, headers={"Origin": ORIGIN}, transports=["websocket"],
                              wait_timeout=30)
            ack = await sio.call("join", {"consultation_id": cid}, timeout=60)
        if not ack.get("ok"):
            raise RuntimeError(f"join refused: {ack.get('error')}")
        return sio

    async def setup(c: dict[str, str]) -> None:
        doctor = await open_client(c["doctor"], "clinician", c["cid"])
        citizen = await open_client(c["citizen"], "citizen", c["cid"])
        clients.append((c, doctor, citizen))

    t0 = time.perf_counter()
    await asyncio.gather(*[setup(c) for c in consultations])
    # The clients' own garbage collection must not show up as server latency: keep what setup built
    # out of the collector's way and collect young objects only during the bounded run.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000_000)
    conn.send({"ready": len(clients), "setup_s": time.perf_counter() - t0})
    duration = conn.recv()["go"]

    whoami_lat: list[float] = []
    for _, doctor, _ in clients[: min(200, len(clients))]:  # the baseline, before the load
        t = time.perf_counter()
        await doctor.call("whoami", timeout=10)
        whoami_lat.append(time.perf_counter() - t)

    stop_at = time.perf_counter() + duration

    async def converse(i: int, c: dict[str, str], doctor: Any, citizen: Any) -> None:
        await asyncio.sleep(interval * (i / max(1, len(clients))))
        seq = 0
        while time.perf_counter() < stop_at:
            sender = doctor if seq % 2 == 0 else citizen
            key = f"{c['cid']}:{seq}"
            t = time.perf_counter()
            sent_at[key] = t
            try:
                ack = await sender.call("message", {"consultation_id": c["cid"], "client_id": f"m{seq}", "text": key},
                                        timeout=30)
                if ack.get("ok"):
                    ack_lat.append(time.perf_counter() - t)
                    if os.environ.get("CHAT_BENCH_DEBUG") and ack_lat[-1] > 0.1:
                        print(f"slow ack {ack_lat[-1]:.3f}s at +{t - started:.2f}s seq {seq}", flush=True)
                    acked[key] = (c["cid"], ack["id"])
                else:
                    errors[ack.get("error", "?")] = errors.get(ack.get("error", "?"), 0) + 1
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            seq += 1
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t)))

    started = time.perf_counter()
    await asyncio.gather(*[converse(i, c, d, z) for i, (c, d, z) in enumerate(clients)])
    wall = time.perf_counter() - started
    await asyncio.sleep(2.0)  # stragglers
    lost = [k for k in acked if k not in delivered]
    # Resync: what a client does after missing broadcasts. Everything acked must be in the stream.
    missing_after_resync = 0
    by_cid: dict[str, set[str]] = {}
    for k in lost:
        by_cid.setdefault(acked[k][0], set()).add(acked[k][1])
    lookup = {c["cid"]: z for c, _, z in clients}
    for cid, ids in by_cid.items():
        hist = await lookup[cid].call("history", {"consultation_id": cid, "after_id": None}, timeout=30)
        missing_after_resync += len(ids - {m["id"] for m in hist.get("messages", [])})
    for _, d, z in clients:
        for sio in (d, z):
            with contextlib.suppress(Exception):
                await sio.disconnect()
    await session.close()
    conn.send({"ack": ack_lat, "deliver": deliver_lat, "sent": len(sent_at), "acked": len(acked),
               "delivered": len(delivered), "lost": len(lost), "missing_after_resync": missing_after_resync,
               "errors": errors, "wall_s": wall, "whoami": whoami_lat})


def _worker(conn: Connection, base: str, consultations: list[dict[str, str]], interval: float, cpus: list[int],
            connect_concurrency: int) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    if os.environ.get("CHAT_BENCH_DEBUG"):
        import sys
        marks: dict[str, float] = {}

        def trace(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                marks["s"] = time.perf_counter()
            elif time.perf_counter() - marks["s"] > 0.02:
                ms = 1000 * (time.perf_counter() - marks["s"])
                sys.stderr.write(f"load GC gen{info['generation']} {ms:.0f} ms\n")
        gc.callbacks.append(trace)
    asyncio.run(_worker_main(conn, base, consultations, interval, connect_concurrency))


# --- the driver -------------------------------------------------------------------------------------

def _cpu_plan(pin: bool) -> tuple[list[int], list[int]]:
    """(server CPUs, load CPUs): the server gets CPU 0 to itself when there is more than one."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or not pin:
        return cpus, cpus
    return cpus[:1], cpus[1:]


def run(consultations: int, duration: float, interval: float, workers: int, connect_concurrency: int,
        pin: bool = True) -> dict:
    import psutil

    from ._procs import nettlege_server, percentile, redis_server

    server_cpus, load_cpus = _cpu_plan(pin)
    env = {"NETTLEGE_ALLOWED_ORIGINS": ORIGIN, "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY}
    with redis_server() as redis_url, nettlege_server(redis_url, env=env) as (base, proc):
        redis_pid = None
        for p in psutil.process_iter(["name", "cmdline"]):
            if p.info["name"] == "redis-server" and redis_url.rsplit(":", 1)[1].split("/")[0] in \
                    " ".join(p.info["cmdline"] or []):
                redis_pid = p.pid
        if pin and server_cpus != load_cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(proc.pid, server_cpus)
            if redis_pid:
                os.sched_setaffinity(redis_pid, load_cpus)
        t0 = time.perf_counter()
        convs = asyncio.run(_create_consultations(redis_url, consultations))
        create_s = time.perf_counter() - t0
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for w in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, base, convs[w::workers], interval, load_cpus,
                                                   connect_concurrency), daemon=True)
            p.start()
            pipes.append(parent)
            procs.append(p)
        ready = [pipe.recv() for pipe in pipes]
        server = psutil.Process(proc.pid)
        redis_proc = psutil.Process(redis_pid) if redis_pid else None
        server.cpu_percent(None)
        if redis_proc:
            redis_proc.cpu_percent(None)
        load_ps = [psutil.Process(p.pid) for p in procs]
        for lp in load_ps:
            lp.cpu_percent(None)
        server_rss_before = server.memory_info().rss
        load_before = os.getloadavg()[0]
        psutil.cpu_percent(None)
        measure_start = time.perf_counter()
        for pipe in pipes:
            pipe.send({"go": duration})
        results = [pipe.recv() for pipe in pipes]
        measured_s = time.perf_counter() - measure_start
        machine_busy = psutil.cpu_percent(None) * (os.cpu_count() or 1)  # % of one core, all processes
        load_after = os.getloadavg()[0]
        server_cpu = server.cpu_percent(None)
        redis_cpu = redis_proc.cpu_percent(None) if redis_proc else None
        load_cpu = sum(lp.cpu_percent(None) for lp in load_ps)
        server_rss = server.memory_info().rss
        for p in procs:
            p.join(10)

    ack = [x for r in results for x in r["ack"]]
    deliver = [x for r in results for x in r["deliver"]]
    whoami = [x for r in results for x in r["whoami"]]
    wall = max(r["wall_s"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "benchmark": "chat", "consultations": consultations, "clients": 2 * consultations,
        "duration_s": duration, "interval_s": interval, "workers": workers,
        "setup_create_s": round(create_s, 2), "setup_connect_join_s": round(max(r["setup_s"] for r in ready), 2),
        "sent": sum(r["sent"] for r in results), "acked": sum(r["acked"] for r in results),
        "delivered": sum(r["delivered"] for r in results), "lost": sum(r["lost"] for r in results),
        "missing_after_resync": sum(r["missing_after_resync"] for r in results), "errors": errors,
        "messages_per_s": round(sum(r["acked"] for r in results) / wall, 1),
        "deliveries_per_s": round(len(deliver) / wall, 1),
        "ack_p50_s": percentile(ack, 50), "ack_p99_s": percentile(ack, 99),
        "deliver_p50_s": percentile(deliver, 50), "deliver_p99_s": percentile(deliver, 99),
        "deliver_max_s": max(deliver) if deliver else None,
        "baseline_whoami_rtt_p50_s": percentile(whoami, 50), "baseline_whoami_rtt_p99_s": percentile(whoami, 99),
        "server_cpu_pct": server_cpu, "redis_cpu_pct": redis_cpu, "load_cpu_pct": load_cpu,
        # CPU the server spent per stored message (incl. its share of pings and pub/sub): less sensitive to a
        # busy machine than the latencies are.
        "server_cpu_ms_per_message": round(server_cpu / 100 * measured_s * 1000 / max(1, sum(r["acked"] for r in
                                                                                           results)), 3),
        "machine_cpu_busy_pct": round(machine_busy, 1),
        "other_processes_cpu_pct": round(machine_busy - server_cpu - (redis_cpu or 0) - load_cpu, 1),
        "loadavg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "server_rss_mb": round(server_rss / 2**20, 1),
        "server_rss_growth_mb": round((server_rss - server_rss_before) / 2**20, 1),
        "where": {"server": f"1 nettlege serve process (REDIS_URL set, AsyncRedisManager) on CPUs {server_cpus}",
                  "pinned": pin and server_cpus != load_cpus,
                  "load": f"{workers} load-generator process(es) on CPUs {load_cpus}",
                  "redis": f"private redis-server (no AOF) on CPUs {load_cpus}", "network": "127.0.0.1",
                  "cpus_total": os.cpu_count()},
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
    result = run(args.consultations, args.duration, args.interval, args.workers, args.connect_concurrency,
                 pin=not args.no_pin)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
