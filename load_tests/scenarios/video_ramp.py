"""Video ramp: 1:1 consultations of aiortc clients through the real server, added step by step until the
picture degrades; then, in the same invocation, the same ramp against aiortc's transcoding relay.

    python -m load_tests.scenarios.video_ramp [--steps 2,4,8,...] [--measure-s 5] [--baseline-steps 1,2,3,4,5]

What runs where (all on 127.0.0.1): a private redis-server; one `nettlege serve` process (REDIS_URL set) on CPU 0
(taskset); one load-generator process (`media_bench`'s, the clients of `load_tests.clients`) on the other CPU(s),
with Redis. Each consultation is set up as in production: the citizen joins the queue, a clinician takes the
ticket, both open the signaling WebSocket (hello/welcome, offer/answer) and publish VP8 640x480 ~800 kbps at
30 fps plus Opus, pre-encoded; received frames are counted without decoding, except in the first consultation of
the ramp, which decodes its video and checks the markers (order, sender). The baseline is aiortc's transcoding
relay (`load_tests.media_server --mode baseline`) on the same CPU, driven by the same load generator.

Per step: join->first-frame times of the consultations added in that step, then `--measure-s` seconds of server
CPU (psutil, % of one core), delivered fps per client, RTP packet loss, and the kernel's UDP receive-buffer drop
counter. A step is degraded when first-frame p95 > 0.8 s (with at least two joins over 0.8 s: one slow join
among a step's few is a retransmission timer, not a trend), mean delivered fps < 90 % of the 30 sent, packet
loss > 1 %, a client never gets a picture, or a setup fails; the ramp stops at the first degraded step, except
on a shared machine: a degraded step during which the server or the load generator spent > 25 % of the window
waiting for a CPU (run-queue time from /proc/PID/task/*/schedstat, i.e. someone else's processes ran there) is
marked `contended` and the ramp stops only if the next step degrades too. Each step also reports every CPU's busy
% and the CPU other people's processes took (`others_cpu_pct`), so a reader can tell a noisy run.
Capacity = the last good step before the stop; consultations per core = capacity / server processes (one Python
process uses at most one core). Also reported: server CPU per consultation over the good steps and 100 % divided
by it (the linear estimate), and whether the load generator's CPU was saturated (then the limit may be the generator's).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from load_tests import harness
from load_tests.media_bench import server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.ramp_parser(__doc__, "2,4,8,12,16,20,24,28,32,36,40")
    parser.add_argument("--baseline-steps", type=harness.parse_steps, default=harness.parse_steps("1,2,3,4,5,6"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--load-processes", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.load_processes <= 8:
        parser.error("--load-processes 1..8")
    return args


def main() -> None:
    args = parse_args()
    before = harness.machine()
    (server_cpus,), load_cpus = harness.cpu_plan(1)
    t0 = time.monotonic()
    sfu, clip, where = harness.ramp_sfu(args, server_cpus, load_cpus)
    runs = [sfu]
    result: dict[str, Any] = {
        "scenario": "video_ramp", "video": clip, "thresholds": {
            "first_frame_p95_max_s": harness.FIRST_FRAME_P95_MAX_S,
            "delivered_fps_min": harness.FPS_MIN_FRACTION * harness.SENT_FPS, "packet_loss_max": harness.LOSS_MAX},
        "capacity_consultations": sfu["capacity"], "consultations_per_core": sfu["capacity"],
        **{k: sfu[k] for k in ("capacity_is_lower_bound", "degraded_at", "degraded_because",
                               "server_cpu_pct_per_consultation", "consultations_per_core_cpu_estimate",
                               "load_generator_saturated_at_limit")},
    }
    if not args.skip_baseline:
        with server("relay", server_cpus) as (base, pids, _), \
                harness.ramp_loads(args.load_processes, load_cpus) as (loads, _clip):
            baseline = harness.ramp("baseline", base, "relay", {"media_relay": pids[0]}, {}, loads, load_cpus,
                                    args.baseline_steps, args.measure_s, args.settle_s, args.gap_s)
        where["baseline"] = f"1 load_tests.media_server --mode baseline process on CPUs {server_cpus}"
        runs.append(baseline)
        cpu_b, cpu_s = baseline["server_cpu_pct_per_consultation"], sfu["server_cpu_pct_per_consultation"]
        result.update({
            "baseline": "aiortc MediaRelay (decode + re-encode per subscriber)",
            "baseline_capacity_consultations": baseline["capacity"], "baseline_degraded_at": baseline["degraded_at"],
            "baseline_server_cpu_pct_per_consultation": cpu_b,
            "cpu_ratio_baseline_over_sfu": round(cpu_b / cpu_s, 1) if cpu_b and cpu_s else None,
            "capacity_ratio_sfu_over_baseline": (round(sfu["capacity"] / baseline["capacity"], 1)
                                                 if sfu["capacity"] and baseline["capacity"] else None),
        })
    result["plot"] = harness.plot_ramps("video_ramp", runs, (
        f"video_ramp: nettlege SFU vs aiortc MediaRelay, 1 server process on CPU {server_cpus}, load on "
        f"{load_cpus}; loadavg {before['loadavg_1_5_15']}"))
    result.update({"runs": runs, "where": {**where, "network": "127.0.0.1", **harness.machine(),
                                           "loadavg_before": before["loadavg_1_5_15"]},
                   "wall_s": round(time.monotonic() - t0, 1)})
    harness.record("scenarios.video_ramp", result, before)


if __name__ == "__main__":
    main()
