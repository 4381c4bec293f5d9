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
import time
from typing import Any

from load_tests import harness
from load_tests.clients import Rest

OP_P99_MAX_S = 0.5
QUEUE = f"/api/v1/tenants/{harness.TENANT}/services/{harness.SERVICE}/queue"


def arrivals(citizens: int, over_s: float, rng: random.Random) -> list[float]:
    """When each citizen joins, in run seconds: Poisson arrivals at a uniform rate, `citizens` of them in
    `over_s` (given their number, the arrival times of a Poisson process are uniform and independent)."""
    return sorted(rng.uniform(0, over_s) for _ in range(citizens))


async def rush(base: str, p: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    scale = p["time_scale"]
    rng = random.Random(7)
    joined_at: dict[str, float] = {}
    waits: list[tuple[float, float]] = []  # (taken at, wait) in run seconds
    queue_len: list[tuple[float, int]] = []
    tag = f"{int(time.time())}"
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    rest = Rest(http, base)
    t0 = time.monotonic()
    last_arrival = p["rush_s"] / scale
    stop_at = t0 + last_arrival + p["tail_s"] / scale

    def now() -> float:
        return time.monotonic() - t0

    async def citizen(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - now()))
        poll = p["poll_s"] / scale
        await rest.wait_in_queue(QUEUE, harness.dev_token(f"rush-{tag}-{i}", "citizen"),
                                 {"channel": "video", "reason": "feber"}, poll_s=poll, until=stop_at,
                                 on_joined=lambda ticket: joined_at.setdefault(ticket, now()),
                                 first_poll_s=rng.uniform(0, poll))

    async def dashboard(token: str) -> None:
        await asyncio.sleep(rng.uniform(0, p["dashboard_s"] / scale))
        while time.monotonic() < stop_at:
            await rest.call("dashboard", "GET", QUEUE, token)
            await asyncio.sleep(p["dashboard_s"] / scale)

    async def hold(taken: dict[str, Any]) -> None:
        waits.append((now(), now() - joined_at.get(taken["ticket_id"], now())))
        await asyncio.sleep(min(rng.expovariate(1 / p["service_s"]) / scale, max(0.0, stop_at - time.monotonic())))

    async def clinician(j: int) -> None:
        token = harness.dev_token(f"rushdr-{tag}-{j}", "clinician")
        board = asyncio.create_task(dashboard(token)) if p["dashboard_s"] > 0 else None
        await asyncio.sleep(rng.uniform(0, 5 / scale))
        # an empty queue: look again in 10 s, but not faster than the 60/min write limit allows
        await rest.take_loop(QUEUE, token, until=stop_at, retry_s=max(10 / scale, 1.5), consult=hold)
        if board is not None:
            board.cancel()

    tasks = [asyncio.create_task(citizen(i, at)) for i, at in enumerate(arrivals(p["citizens"], last_arrival, rng))]
    tasks += [asyncio.create_task(clinician(j)) for j in range(p["clinicians"])]
    tasks.append(asyncio.create_task(rest.watch_queue(harness.TENANT, harness.SERVICE, until=stop_at,
                                                      sample=lambda n: queue_len.append((now(), n)))))
    await asyncio.gather(*tasks)
    wall = now()
    await http.close()
    lat = {k: rest.latency.get(k, []) for k in ("join", "take", "take_empty", "poll", "end", "dashboard")}
    return {"lat": lat, "statuses": rest.statuses, "waits": waits, "queue_len": queue_len, "wall_s": wall,
            "joined": len(joined_at)}


def load_generator() -> dict[str, Any]:
    return {"run": rush}


def summarise(res: dict[str, Any], cpu_series: list[tuple[float, float]], scale: float, rush_s: float,
              ) -> dict[str, Any]:
    lat = res["lat"]
    waits_real = [w * scale for _, w in res["waits"]]
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
    return {
        "time_scale": scale, "run_s": round(res["wall_s"], 1), "joined": res["joined"], "taken": len(res["waits"]),
        "queue_length_max": max((n for _, n in res["queue_len"]), default=0),
        "queue_length_end": res["queue_len"][-1][1] if res["queue_len"] else None,
        **{f"{op}_p50_s": harness.p4(v, 50) for op, v in lat.items()},
        **{f"{op}_p99_s": harness.p4(v, 99) for op, v in lat.items()},
        "ops_per_s_as_run": round(sum(len(v) for v in lat.values()) / res["wall_s"], 1),
        "joins_per_s_as_run": round(len(lat["join"]) / (rush_s / scale), 1),
        "wait_of_taken_p50_s_real": harness.p4(waits_real, 50),
        "wait_of_taken_max_s_real": harness.r4(max(waits_real)) if waits_real else None,
        "statuses": res["statuses"],
        "within_target": max(harness.percentile(lat["join"], 99) or 99,
                             harness.percentile(lat["take"], 99) or 99) <= OP_P99_MAX_S,
        "target": {"join_p99_max_s": OP_P99_MAX_S, "take_p99_max_s": OP_P99_MAX_S},
        "plot": harness.save_plot(fig, axes, "queue_rush", f"queue_rush at {scale:g}x real time: one nettlege "
                                  "process on CPU 0, load on CPU 1", None),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.scenario_parser(__doc__)
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
    args = parser.parse_args(argv)
    if not 1 <= args.citizens <= 20000 or not 1 <= args.clinicians <= 1000 or args.time_scale <= 0 \
            or args.rush_s <= 0 or min(args.tail_s, args.poll_s, args.dashboard_s) < 0 or args.service_s <= 0 \
            or (args.rush_s + args.tail_s) / args.time_scale > 300:
        parser.error("--citizens 1..20000, --clinicians 1..1000, --rush-s, --service-s and --time-scale > 0, "
                     "--tail-s, --poll-s, --dashboard-s >= 0, and (rush-s + tail-s) / time-scale <= 300 s")
    return args


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """The load generator's parameters (real-time figures; `rush` divides them by the time scale)."""
    return {k: getattr(args, k) for k in ("citizens", "rush_s", "clinicians", "service_s", "poll_s", "dashboard_s",
                                          "tail_s", "time_scale")}


def main() -> None:
    args = parse_args()
    params = plan(args)
    harness.run_scenario("queue_rush", load_generator,
                         lambda res, series, _: {"params_real_time": params,
                                                 **summarise(res, series, args.time_scale, args.rush_s)},
                         load="aiohttp", p=params)


if __name__ == "__main__":
    main()
