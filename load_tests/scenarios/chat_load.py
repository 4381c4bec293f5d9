"""Chat load: N concurrent chat consultations (two Socket.IO clients each) for several N; send->deliver latency
p50/p99 and messages/s against N.

    python -m load_tests.scenarios.chat_load [--consultations 100,500,1000,2000] [--duration 15] [--interval 5]

Each N is one run of `load_tests.chat_bench` (its own private redis-server and `nettlege serve` process with
REDIS_URL set, on CPU 0; load-generator processes of Socket.IO clients on the other CPU(s), with Redis). In
each consultation the two sides take turns, one message every `--interval` seconds between them (default 5 s: a
brisk typed conversation is one message per 15-30 s per person, so this is 3-6x that).
N is within target when send->deliver p99 <= 0.5 s, nothing acked is lost, and no send fails; the capacity is
the largest N within target (a lower bound when the largest N tried passes).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from load_tests.chat_bench import run as chat_run
from load_tests.harness import machine, pyplot, record, save_plot, scenario_parser

DELIVER_P99_MAX_S = 0.5


def plot(runs: list[dict[str, Any]], interval: float) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [r["consultations"] for r in runs]
    axes[0].plot(xs, [r["deliver_p50_s"] for r in runs], "o-", label="send → deliver p50")
    axes[0].plot(xs, [r["deliver_p99_s"] for r in runs], "o-", label="send → deliver p99")
    axes[0].plot(xs, [r["ack_p99_s"] for r in runs], ".:", label="send → ack (stored) p99")
    axes[0].axhline(DELIVER_P99_MAX_S, color="red", ls="--", lw=1, label="target p99")
    axes[0].set(xlabel="concurrent chat consultations (2 clients each)", ylabel="seconds", yscale="log",
                title="chat latency")
    axes[1].plot(xs, [r["messages_per_s"] for r in runs], "o-", label="messages/s")
    axes[1].plot(xs, [r["server_cpu_pct"] for r in runs], "s-", label="server CPU % of one core")
    axes[1].set(xlabel="concurrent chat consultations (2 clients each)", title="throughput and server CPU")
    return save_plot(fig, axes, "chat_load", "chat_load: one nettlege process on CPU 0, Socket.IO load on CPU 1; "
                     f"one message per {interval:g} s per consultation", 8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = scenario_parser(__doc__)
    parser.add_argument("--consultations", default="100,500,1000,2000",
                        type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of conversation per N")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages per consultation")
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    args = parser.parse_args(argv)
    if not args.consultations or any(not 1 <= n <= 5000 for n in args.consultations) \
            or not 1 <= args.duration <= 120 or args.interval <= 0 or not 1 <= args.workers <= 8:
        parser.error("--consultations each 1..5000, --duration 1..120, --interval > 0, --workers 1..8")
    return args


def main() -> None:
    args = parse_args()
    before = machine()
    t0 = time.monotonic()
    runs = []
    for n in args.consultations:
        r = chat_run(n, args.duration, args.interval, args.workers, 100)
        r["within_target"] = bool(r["deliver_p99_s"] is not None and r["deliver_p99_s"] <= DELIVER_P99_MAX_S
                                  and not r["lost"] and not r["errors"])
        r["loadavg"] = machine()["loadavg_1_5_15"]
        print({k: r[k] for k in ("consultations", "deliver_p50_s", "deliver_p99_s", "messages_per_s",
                                 "server_cpu_pct", "lost", "errors", "within_target")}, file=sys.stderr, flush=True)
        runs.append(r)
        if not r["within_target"]:
            break
    good = [r for r in runs if r["within_target"]]
    best = good[-1] if good else None
    result = {
        "scenario": "chat_load", "interval_s": args.interval, "duration_s": args.duration,
        "target": {"deliver_p99_max_s": DELIVER_P99_MAX_S, "lost": 0},
        "capacity_consultations": best["consultations"] if best else 0,
        "capacity_is_lower_bound": len(good) == len(runs),
        "at_capacity": {k: best[k] for k in ("deliver_p50_s", "deliver_p99_s", "ack_p50_s", "ack_p99_s",
                                             "messages_per_s", "server_cpu_pct", "redis_cpu_pct",
                                             "server_rss_mb")} if best else None,
        "points": [{k: r[k] for k in ("consultations", "deliver_p50_s", "deliver_p99_s", "ack_p99_s",
                                      "messages_per_s", "server_cpu_pct", "redis_cpu_pct", "load_cpu_pct", "lost",
                                      "errors", "server_rss_mb", "within_target", "loadavg")} for r in runs],
        "plot": plot(runs, args.interval),
        "where": {**runs[0]["where"], "loadavg_before": before["loadavg_1_5_15"]},
        "wall_s": round(time.monotonic() - t0, 1),
    }
    record("scenarios.chat_load", result, before)


if __name__ == "__main__":
    main()
