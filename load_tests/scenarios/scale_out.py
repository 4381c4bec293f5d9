"""Scale-out: the video ramp (see video_ramp) with 1 and with 2 server processes on this machine, sharing Redis.

    python -m load_tests.scenarios.scale_out [--steps-1 4,8,...] [--steps-2 8,16,...] [--measure-s 5]

1 process: `nettlege serve` pinned to CPU 0, one load-generator process and Redis on the other CPU(s).
2 processes: `nettlege serve --workers 2` (the supervisor and its two workers on consecutive ports, REDIS_URL
set to a private redis-server), worker i pinned to CPU i. Consultations are created through the first worker's
REST API; `GET /api/v1/consultations/{id}` hands out the `signal_url` of the node the placement logic chose (the
least-loaded live node by its heartbeat), and the clients open their WebSocket and media there. The heartbeat
interval is a third of NETTLEGE_NODE_TIMEOUT_S (set to 4.5 s here, so 1.5 s; short enough for placement to see
the load move, long enough that a busy worker is not declared dead) and consultations start `--gap-s-2` (0.8 s)
apart, so each heartbeat carries one or two new placements. Load generators (2 processes) float
over all CPUs in this configuration: on a 2-CPU machine there is no free core left for them, so the 2-process
capacity measured here is bounded by the machine, not by nettlege. The figure that transfers to a machine with
more cores is the scaling efficiency: server CPU per consultation with 1 process divided by the same with 2
(1.0 = the second process costs nothing extra), and how evenly placement spread the consultations.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from load_tests.harness import (
    cpu_plan,
    machine,
    nettlege_server,
    pin,
    pyplot,
    record,
    redis_pid,
    redis_server,
    save_plot,
)

from .video_ramp import (
    FIRST_FRAME_P95_MAX_S,
    add_common_args,
    close_loads,
    mark_contended,
    parse_steps,
    ramp,
    run_sfu,
    start_loads,
)


def run_two(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    server_cpus, load_cpus = cpu_plan(2)
    with redis_server() as redis_url, \
            nettlege_server(redis_url, env={"NETTLEGE_NODE_TIMEOUT_S": "4.5"}, workers=2) as s:
        for pid, cpu_list in zip(s.pids, server_cpus, strict=False):
            pin(pid, cpu_list)
        time.sleep(1.0)  # every worker has sent a heartbeat
        rpid = redis_pid(redis_url)
        loads, _ = start_loads(args.load_processes_2, load_cpus)
        try:
            result = ramp("2 processes", s.base, "nettlege", {f"worker{i}": pid for i, pid in enumerate(s.pids)},
                          {"redis": rpid, "supervisor": s.proc.pid}, loads, load_cpus, args.steps_2,
                          args.measure_s, args.settle_s, args.gap_s_2)
        finally:
            close_loads(loads)
    where = {"servers_2": f"nettlege serve --workers 2: workers on CPUs {server_cpus} (one each), REST via the first",
             "load_2": f"{len(loads)} load-generator processes floating on CPUs {load_cpus}, with redis-server"}
    return result, where


def plot(one: dict[str, Any], two: dict[str, Any]) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for run in (one, two):
        xs = [s["consultations"] for s in run["steps"]]
        axes[0].plot(xs, [s["server_cpu_pct"] for s in run["steps"]], "o-", label=f"{run['label']}: all servers")
        axes[1].plot(xs, [s["first_frame_p95_s"] for s in run["steps"]], "o-", label=run["label"])
        axes[2].plot(xs, [s["delivered_fps"] for s in run["steps"]], "o-", label=run["label"])
        mark_contended(axes, run["steps"], label=run is one)
    for name in sorted(two["steps"][0]["server_cpu_by_process"]):
        axes[0].plot([s["consultations"] for s in two["steps"]],
                     [s["server_cpu_by_process"][name] for s in two["steps"]], ".:", label=f"2 processes: {name}")
    axes[0].axhline(100, color="grey", ls=":", lw=1)
    axes[0].set(xlabel="concurrent 1:1 consultations", ylabel="% of one core", title="server CPU")
    axes[1].axhline(FIRST_FRAME_P95_MAX_S, color="red", ls="--", lw=1, label="limit")
    axes[1].set(xlabel="concurrent 1:1 consultations", ylabel="seconds", title="join → first frame, p95")
    axes[2].axhline(27, color="red", ls="--", lw=1, label="limit")
    axes[2].set(xlabel="concurrent 1:1 consultations", ylabel="fps", title="delivered video fps (30 sent)")
    return save_plot(fig, axes, "scale_out", f"scale_out: 1 vs 2 nettlege processes sharing Redis on a "
                     f"{os.cpu_count()}-CPU machine (2 processes: load generators share the servers' CPUs)", 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "4,8,12,16,20,24,28,32,36,40")
    parser.add_argument("--steps-2", type=parse_steps, default=parse_steps("8,16,24,32,40,48,56"))
    parser.add_argument("--gap-s-2", type=float, default=0.8, help="seconds between starts with 2 processes")
    parser.add_argument("--load-processes-2", type=int, default=2)
    args = parser.parse_args()
    args.load_processes = 1
    before = machine()
    t0 = time.monotonic()
    server_cpus, load_cpus = cpu_plan(1)
    one, _, where = run_sfu(args, server_cpus[0], load_cpus)
    one["label"] = "1 process"
    two, where_two = run_two(args)
    where.update(where_two)
    per1, per2 = one["server_cpu_pct_per_consultation"], two["server_cpu_pct_per_consultation"]
    nodes = list(two["nodes"].values())
    result = {
        "scenario": "scale_out",
        "capacity_1_process": one["capacity"], "capacity_2_processes": two["capacity"],
        "capacity_ratio": round(two["capacity"] / one["capacity"], 2) if one["capacity"] else None,
        "degraded_at_1": one["degraded_at"], "degraded_because_1": one["degraded_because"],
        "degraded_at_2": two["degraded_at"], "degraded_because_2": two["degraded_because"],
        "capacity_2_is_lower_bound": two["capacity_is_lower_bound"],
        "server_cpu_pct_per_consultation_1": per1, "server_cpu_pct_per_consultation_2": per2,
        "scaling_efficiency": round(per1 / per2, 2) if per1 and per2 else None,
        "placement": two["nodes"],
        "placement_balance": round(min(nodes) / max(nodes), 2) if nodes and max(nodes) else None,
        "load_generator_saturated_at_limit_2": two["load_generator_saturated_at_limit"],
    }
    result["plot"] = plot(one, two)
    result.update({"runs": [one, two], "where": {**where, "network": "127.0.0.1", **machine(),
                                                 "loadavg_before": before["loadavg_1_5_15"]},
                   "wall_s": round(time.monotonic() - t0, 1)})
    record("scenarios.scale_out", result, before)


if __name__ == "__main__":
    main()
