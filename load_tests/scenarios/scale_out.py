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

from load_tests import harness


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.ramp_parser(__doc__, "4,8,12,16,20,24,28,32,36,40")
    parser.add_argument("--steps-2", type=harness.parse_steps, default=harness.parse_steps("8,16,24,32,40,48,56"))
    parser.add_argument("--gap-s-2", type=harness.seconds, default=0.8, help="seconds between starts with 2 processes")
    parser.add_argument("--load-processes-2", type=int, default=2)
    args = parser.parse_args(argv)
    if not 1 <= args.load_processes_2 <= 8:
        parser.error("--load-processes-2 1..8")
    args.load_processes = 1  # the 1-process ramp (harness.ramp_sfu) has one load generator
    return args


def main() -> None:
    args = parse_args()
    before = harness.machine()
    t0 = time.monotonic()
    (server_cpu,), load_cpus = harness.cpu_plan(1)
    one, _, where = harness.ramp_sfu(args, server_cpu, load_cpus)
    one["label"] = "1 process"
    server_cpus, load_cpus = harness.cpu_plan(2)
    with harness.redis_server() as redis_url, \
            harness.nettlege_server(redis_url, env={"NETTLEGE_NODE_TIMEOUT_S": "4.5"}, workers=2) as s:
        for pid, cpu_list in zip(s.pids, server_cpus, strict=False):
            harness.pin(pid, cpu_list)
        time.sleep(1.0)  # every worker has sent a heartbeat
        with harness.ramp_loads(args.load_processes_2, load_cpus) as (loads, _clip):
            two = harness.ramp("2 processes", s.base, "nettlege", {f"worker{i}": p for i, p in enumerate(s.pids)},
                               {"redis": harness.redis_pid(redis_url), "supervisor": s.proc.pid}, loads, load_cpus,
                               args.steps_2, args.measure_s, args.settle_s, args.gap_s_2)
    where.update({"servers_2": f"nettlege serve --workers 2: workers on CPUs {server_cpus} (one each), REST via "
                               "the first",
                  "load_2": f"{args.load_processes_2} load-generator processes floating on CPUs {load_cpus}, with "
                            "redis-server"})
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
        "plot": harness.plot_ramps("scale_out", [one, two], (
            f"scale_out: 1 vs 2 nettlege processes sharing Redis on a {os.cpu_count()}-CPU machine (2 processes: "
            "load generators share the servers' CPUs)"), per_process=two),
        "runs": [one, two], "where": {**where, "network": "127.0.0.1", **harness.machine(),
                                      "loadavg_before": before["loadavg_1_5_15"]},
        "wall_s": round(time.monotonic() - t0, 1),
    }
    harness.record("scenarios.scale_out", result, before)


if __name__ == "__main__":
    main()
