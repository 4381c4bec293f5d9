"""Queue rush: a morning rush on one service's queue, compressed in time.

    python -m load_tests.scenarios.queue_rush [--citizens 2000] [--rush-s 300] [--clinicians 40] [--time-scale 10]

Real-time model (all durations below are real seconds; the run divides every one of them by --time-scale, so
requests arrive --time-scale times faster than they would, and the server sees that many times the load):
- `--citizens` join the video queue over `--rush-s` (Poisson arrivals, uniform rate), each with its own subject;
  while waiting, each polls its ticket (`GET /api/v1/tickets/{id}`: place and estimated wait) every `--poll-s`.
- `--clinicians` take the next ticket (`POST .../queue/take`), hold the consultation for an exponentially
  distributed `--service-s` on average, end it (`POST /api/v1/consultations/{id}/end`) and take the next; with an
  empty queue they look again after 10 s. Each also refreshes the staff queue list (`GET .../queue`, every
  waiting ticket) every `--dashboard-s`.
- the run goes on `--tail-s` after the last arrival.
The server: one `nettlege serve` process with a private redis-server (REDIS_URL), pinned to CPU 0. The load: one
load-generator process (aiohttp) pinned to the other CPU(s), with Redis. Tokens are dev JWTs minted by the load
generator (setup is not what is measured). Reported: latency p50/p99 per operation, operations/s (as run), queue
length over time, the wait of every taken ticket converted back to real time (x --time-scale), server CPU.
Target: join and take p99 <= 0.5 s.

Compression multiplies every rate: at 10x the 2,000 waiting citizens' polls alone are ~670 requests/s, and each
staff queue list returns every waiting ticket. `--poll-s 0` / `--dashboard-s 0` leave those out to see the
queue operations by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from load_tests import harness
from load_tests.clients import Rest

OP_P99_MAX_S = 0.5


async def rush(base: str, p: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    scale = p["time_scale"]
    rng = random.Random(7)
    joined_at: dict[str, float] = {}
    waits: list[tuple[float, float]] = []  # (taken at, wait) in run seconds
    queue_len: list[tuple[float, int]] = []
    tag = f"{int(time.time())}"
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    rest = Rest(http)
    call = rest.call
    t0 = time.monotonic()
    last_arrival = p["rush_s"] / scale
    stop_at = last_arrival + p["tail_s"] / scale
    queue_url = f"{base}/api/v1/tenants/{harness.TENANT}/services/{harness.SERVICE}/queue"

    def now() -> float:
        return time.monotonic() - t0

    async def citizen(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - now()))
        token = harness.dev_token(f"rush-{tag}-{i}", "citizen")
        status, data = await call("join", "POST", queue_url, token, {"channel": "video", "reason": "feber"})
        if status != 201:
            return
        ticket = data["ticket_id"]
        joined_at[ticket] = now()
        if p["poll_s"] <= 0:
            return
        poll = p["poll_s"] / scale
        await asyncio.sleep(rng.uniform(0, poll))
        while now() < stop_at:
            status, data = await call("poll", "GET", f"{base}/api/v1/tickets/{ticket}", token)
            if status == 200 and data["state"] != "waiting":
                return
            await asyncio.sleep(poll)

    async def dashboard(token: str) -> None:
        await asyncio.sleep(rng.uniform(0, p["dashboard_s"] / scale))
        while now() < stop_at:
            await call("dashboard", "GET", queue_url, token)
            await asyncio.sleep(p["dashboard_s"] / scale)

    async def clinician(j: int) -> None:
        token = harness.dev_token(f"rushdr-{tag}-{j}", "clinician")
        board = asyncio.create_task(dashboard(token)) if p["dashboard_s"] > 0 else None
        await asyncio.sleep(rng.uniform(0, 5 / scale))
        while now() < stop_at:
            status, data = await call("take", "POST", f"{queue_url}/take", token)
            if status != 200:
                await asyncio.sleep(max(10 / scale, 1.5))  # not faster than the 60/min write limit allows
                continue
            waits.append((now(), now() - joined_at.get(data["ticket_id"], now())))
            await asyncio.sleep(min(rng.expovariate(1 / p["service_s"]) / scale, max(0.0, stop_at - now())))
            await call("end", "POST", f"{base}/api/v1/consultations/{data['consultation_id']}/end", token,
                       {"outcome": "resolved"})
        if board is not None:
            board.cancel()

    async def watch() -> None:
        while now() < stop_at:
            waiting = await Rest(http, base).queue_length(harness.TENANT, harness.SERVICE)
            if waiting is not None:
                queue_len.append((now(), waiting))
            await asyncio.sleep(0.5)

    arrivals, t = [], 0.0
    rate = p["citizens"] / last_arrival
    for _ in range(p["citizens"]):
        t += rng.expovariate(rate)
        arrivals.append(min(t, last_arrival))
    tasks = [asyncio.create_task(citizen(i, at)) for i, at in enumerate(arrivals)]
    tasks += [asyncio.create_task(clinician(j)) for j in range(p["clinicians"])]
    tasks.append(asyncio.create_task(watch()))
    await asyncio.gather(*tasks)
    wall = now()
    await http.close()
    lat = {k: rest.latency.get(k, []) for k in ("join", "take", "take_empty", "poll", "end", "dashboard")}
    return {"lat": lat, "statuses": rest.statuses, "waits": waits, "queue_len": queue_len, "wall_s": wall,
            "joined": len(joined_at)}


def load_generator() -> dict[str, Any]:
    return {"run": rush}


def plot(res: dict[str, Any], cpu_series: list[tuple[float, float]], scale: float) -> str:
    plt = harness.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    to_min = scale / 60
    axes[0].plot([t * to_min for t, _ in res["queue_len"]], [n for _, n in res["queue_len"]], "-")
    axes[0].set(xlabel="minutes (real-time equivalent)", ylabel="tickets waiting", title="queue length")
    axes[1].plot([t * to_min for t, _ in res["waits"]], [w * to_min for _, w in res["waits"]], ".", ms=4)
    axes[1].set(xlabel="minutes (real-time equivalent), when taken", ylabel="wait (minutes, real-time equivalent)",
                title=f"wait of taken tickets ({len(res['waits'])})")
    axes[2].plot([t * to_min for t, _ in cpu_series], [c for _, c in cpu_series], "-", label="server CPU %")
    axes[2].set(xlabel="minutes (real-time equivalent)", ylabel="% of one core", title="server CPU")
    return harness.save_plot(fig, axes, "queue_rush", f"queue_rush at {scale:g}x real time: one nettlege process on "
                             "CPU 0, load on CPU 1", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--rush-s", type=float, default=300.0, help="real seconds over which citizens arrive")
    parser.add_argument("--clinicians", type=int, default=40)
    parser.add_argument("--service-s", type=float, default=240.0, help="mean consultation length (real seconds)")
    parser.add_argument("--poll-s", type=float, default=30.0,
                        help="citizen ticket poll interval (real seconds; 0: no polling)")
    parser.add_argument("--dashboard-s", type=float, default=15.0,
                        help="clinician queue-list refresh (real seconds; 0: none)")
    parser.add_argument("--tail-s", type=float, default=120.0, help="real seconds after the last arrival")
    parser.add_argument("--time-scale", type=float, default=10.0, help="run this many times faster than real time")
    args = parser.parse_args()
    run_s = (args.rush_s + args.tail_s) / args.time_scale
    if not 1 <= args.citizens <= 20000 or run_s > 300:
        parser.error("--citizens 1..20000 and (rush-s + tail-s) / time-scale <= 300 s")
    params = {k: getattr(args, k) for k in ("citizens", "rush_s", "clinicians", "service_s", "poll_s",
                                            "dashboard_s", "tail_s", "time_scale")}
    before = harness.machine()
    res, cpu, waited, series, bench = harness.run_once_sampled(load_generator, p=params)
    server_cpus, load_cpus = bench.server_cpus, bench.load_cpus
    lat = res["lat"]
    ops = sum(len(v) for v in lat.values())
    waits_real = [w * args.time_scale for _, w in res["waits"]]
    result = {
        "scenario": "queue_rush", "time_scale": args.time_scale, "params_real_time": params,
        "run_s": round(res["wall_s"], 1), "joined": res["joined"], "taken": len(res["waits"]),
        "queue_length_max": max((n for _, n in res["queue_len"]), default=0),
        "queue_length_end": res["queue_len"][-1][1] if res["queue_len"] else None,
        **{f"{op}_p50_s": harness.p4(v, 50) for op, v in lat.items()},
        **{f"{op}_p99_s": harness.p4(v, 99) for op, v in lat.items()},
        "ops_per_s_as_run": round(ops / res["wall_s"], 1),
        "joins_per_s_as_run": round(len(lat["join"]) / (args.rush_s / args.time_scale), 1),
        "wait_of_taken_p50_s_real": harness.p4(waits_real, 50),
        "wait_of_taken_max_s_real": harness.r4(max(waits_real, default=None) if waits_real else None),
        "statuses": res["statuses"],
        "within_target": max(harness.percentile(lat["join"], 99) or 99,
                             harness.percentile(lat["take"], 99) or 99) <= OP_P99_MAX_S,
        "target": {"join_p99_max_s": OP_P99_MAX_S, "take_p99_max_s": OP_P99_MAX_S},
        "server_cpu_pct": cpu.get("server"), "server_cpu_pct_peak_1s": max((c for _, c in series), default=None),
        "redis_cpu_pct": cpu.get("redis"), "load_cpu_pct": cpu.get("load"), "runqueue_wait_pct": waited,
    }
    result["plot"] = plot(res, series, args.time_scale)
    result["where"] = {"server": f"1 nettlege serve process (pid {bench.pid}, REDIS_URL set) on CPUs {server_cpus}",
                       "redis": f"private redis-server on CPUs {load_cpus}",
                       "load": f"1 load-generator process (pid {bench.load_pid}, aiohttp) on CPUs {load_cpus}",
                       "network": "127.0.0.1", **harness.machine(), "loadavg_before": before["loadavg_1_5_15"]}
    print({k: v for k, v in result.items() if k != "statuses"}, file=sys.stderr)
    harness.record("scenarios.queue_rush", result, before)


if __name__ == "__main__":
    main()
