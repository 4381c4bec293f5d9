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
import statistics
import sys
import time
from typing import Any

from load_tests.harness import (
    CpuMeter,
    MachineMeter,
    Worker,
    cpu_plan,
    machine,
    percentile,
    pinned_server,
    pyplot,
    r4,
    record,
    save_plot,
    udp_rcvbuf_errors,
)
from load_tests.media_bench import load_generator, server

SENT_FPS = 30
FIRST_FRAME_P95_MAX_S = 0.8
FPS_MIN_FRACTION = 0.9
LOSS_MAX = 0.01
CONTENDED_WAIT_PCT = 25.0


def step_record(target: int, added: list[dict[str, Any]], measured: list[dict[str, Any]], server_cpu: dict[str, float],
                other_cpu: dict[str, float], load_cpus: list[int]) -> dict[str, Any]:
    """One step's figures and the reasons it is degraded (empty when good)."""
    first = [f for a in added for f in a.get("first_frame_s", [])]
    errors = [e for a in added for e in a.get("errors", [])]
    no_picture = sum(a.get("no_picture", 0) for a in added)
    fps = [f for m in measured for f in m["fps"]]
    fps_mean = sum(fps) / len(fps) if fps else 0.0
    received = sum(m["received_packets"] for m in measured)
    lost = sum(m["lost_packets"] for m in measured)
    loss = min(1.0, lost / (received + lost)) if received + lost > 0 else 0.0
    samples = [m["sample"] for m in measured if m["sample"]]
    total_cpu = sum(server_cpu.values())
    load_cpu = sum(v for k, v in other_cpu.items() if k.startswith("load"))
    ff_p95 = percentile(first, 95)
    slow_joins = sum(f > FIRST_FRAME_P95_MAX_S for f in first)
    reasons = []
    # One slow join among a step's few is not a trend (a lost DTLS or ICE packet costs a 1 s retransmission
    # timer): the p95 rule needs at least two joins over the limit.
    if ff_p95 is None or (ff_p95 > FIRST_FRAME_P95_MAX_S and slow_joins >= 2):
        reasons.append(f"first_frame_p95 {ff_p95}")
    if fps_mean < FPS_MIN_FRACTION * SENT_FPS:
        reasons.append(f"fps {fps_mean:.1f}")
    if loss > LOSS_MAX:
        reasons.append(f"loss {loss:.3f}")
    if no_picture:
        reasons.append(f"no_picture {no_picture}")
    if errors:
        reasons.append(f"errors {errors[:2]}")
    return {
        "consultations": target, "server_cpu_pct": round(total_cpu, 1), "server_cpu_by_process": server_cpu,
        "server_cpu_pct_per_consultation": round(total_cpu / target, 2),
        "load_cpu_pct": round(load_cpu, 1), "redis_cpu_pct": other_cpu.get("redis"),
        "first_frame_p50_s": r4(percentile(first, 50)), "first_frame_p95_s": r4(ff_p95),
        "first_frame_max_s": r4(max(first)) if first else None, "joins": len(first), "slow_joins": slow_joins,
        "delivered_fps": round(fps_mean, 2), "delivered_fps_min": r4(min(fps)) if fps else None,
        "clients_below_27fps": sum(f < 27 for f in fps), "packet_loss": r4(loss), "no_picture": no_picture,
        "errors": len(errors), "sample_markers": {k: sum(s[k] for s in samples) for k in samples[0]} if samples
        else None, "degraded": reasons, "load_generator_saturated": load_cpu > 90 * len(load_cpus),
    }


def ramp(label: str, base: str, kind: str, server_pids: dict[str, int], other_pids: dict[str, int | None],
         loads: list[Worker], load_cpus: list[int], steps: list[int], measure_s: float, settle_s: float,
         gap_s: float) -> dict[str, Any]:
    """Add consultations up to each step in turn, measure, stop at the first degraded step (on a contended
    step, at the second in a row)."""
    records: list[dict[str, Any]] = []
    server_meter = CpuMeter(server_pids)
    other_meter = CpuMeter({**other_pids, **{f"load{i}": lp.pid for i, lp in enumerate(loads)}})
    machine_meter = MachineMeter()
    current = 0
    nodes: dict[str, int] = {}
    for step_index, target in enumerate(steps):
        delta = target - current
        shares = [delta // len(loads) + (i < delta % len(loads)) for i in range(len(loads))]
        added = []
        # One load process at a time: consultations come from one queue, and a clinician in one process must
        # not take the ticket of a citizen in another.
        for i, (lp, n) in enumerate(zip(loads, shares, strict=True)):
            if n:
                added.append(lp.call("add", timeout=60 + 5 * n, server=kind, url=base, n=n, gap_s=gap_s,
                                     sample=step_index == 0 and i == 0))
        current = target
        for a in added:
            for node, count in a.get("nodes", {}).items():
                nodes[node] = nodes.get(node, 0) + count
        time.sleep(settle_s)
        udp0 = udp_rcvbuf_errors()
        server_meter.start()
        other_meter.start()
        machine_meter.start()
        for lp in loads:
            lp.send("measure", duration=measure_s)
        measured = [lp.receive(60 + measure_s) for lp in loads]
        server_cpu, other_cpu, busy = server_meter.stop(), other_meter.stop(), machine_meter.stop()
        record_ = step_record(target, added, measured, server_cpu, other_cpu, load_cpus)
        record_.update({
            "udp_rcvbuf_drops_machine": udp_rcvbuf_errors() - udp0, "machine_busy_pct_per_cpu": busy,
            "runqueue_wait_pct": {**server_meter.waited, **other_meter.waited},
            "others_cpu_pct": round(max(0.0, sum(busy) - sum(server_cpu.values()) - sum(other_cpu.values())), 1)})
        # A degraded step during which the server or a load generator waited > CONTENDED_WAIT_PCT of the window
        # for a CPU (someone else's processes ran there) ends the ramp only if the next step degrades too.
        waits = {**server_meter.waited, **{k: v for k, v in other_meter.waited.items() if k.startswith("load")}}
        record_["contended"] = max(waits.values(), default=0.0) > CONTENDED_WAIT_PCT
        records.append(record_)
        print(f"[{label}] {record_}", file=sys.stderr, flush=True)
        previous_degraded = len(records) > 1 and bool(records[-2]["degraded"])
        if record_["degraded"] and (not record_["contended"] or previous_degraded):
            break
    return summarise_ramp(label, records, nodes)


def summarise_ramp(label: str, records: list[dict[str, Any]], nodes: dict[str, int]) -> dict[str, Any]:
    good = [r for r in records if not r["degraded"]]
    per_consult = statistics.median(r["server_cpu_pct_per_consultation"] for r in good) if good else None
    last = records[-1] if records else None
    stopped = last is not None and bool(last["degraded"])
    # the last good step before the step that ended the ramp (before the first of two degraded in a row)
    limit = records[-2]["consultations"] if stopped and len(records) > 1 and records[-2]["degraded"] else (
        last["consultations"] if stopped and last else None)
    capacity = max((r["consultations"] for r in good if limit is None or r["consultations"] < limit), default=0)
    return {
        "label": label, "steps": records, "capacity": capacity, "capacity_is_lower_bound": not stopped,
        "degraded_at": last["consultations"] if stopped and last else None,
        "degraded_because": last["degraded"] if stopped and last else None,
        "contended_steps": [r["consultations"] for r in records if r["contended"]],
        "server_cpu_pct_per_consultation": r4(per_consult),
        "consultations_per_core_cpu_estimate": round(100 / per_consult, 1) if per_consult else None,
        "load_generator_saturated_at_limit": records[-1]["load_generator_saturated"] if records else None,
        "nodes": nodes,
    }


def start_loads(count: int, cpu_list: list[int]) -> tuple[list[Worker], dict[str, Any]]:
    loads = [Worker(load_generator, cpu_list) for _ in range(count)]
    for lp in loads:
        lp.send("setup")
    clips = [lp.receive(120) for lp in loads]
    return loads, clips[0]


def close_loads(loads: list[Worker]) -> None:
    for lp in loads:
        lp.close()


def run_sfu(args: argparse.Namespace, server_cpus: list[int], load_cpus: list[int]) -> tuple[dict, dict, dict]:
    with pinned_server() as bench:
        loads, clip = start_loads(args.load_processes, load_cpus)
        try:
            result = ramp("sfu", bench.base, "nettlege", {"nettlege": bench.pid}, {"redis": bench.redis_pid}, loads,
                          load_cpus, args.steps, args.measure_s, args.settle_s, args.gap_s)
        finally:
            close_loads(loads)
    where = {"server": f"1 nettlege serve process (REDIS_URL set) on CPUs {server_cpus}",
             "redis": f"private redis-server on CPUs {load_cpus}",
             "load": f"{len(loads)} load-generator process(es) on CPUs {load_cpus}"}
    return result, clip, where


def run_baseline(args: argparse.Namespace, server_cpus: list[int], load_cpus: list[int]) -> tuple[dict, dict]:
    with server("relay", server_cpus) as (base, pids, _):
        loads, _ = start_loads(args.load_processes, load_cpus)
        try:
            result = ramp("baseline", base, "relay", {"media_relay": pids[0]}, {}, loads, load_cpus,
                          args.baseline_steps, args.measure_s, args.settle_s, args.gap_s)
        finally:
            close_loads(loads)
    return result, {"baseline": f"1 load_tests.media_server --mode baseline process on CPUs {server_cpus}"}


def plot(name: str, runs: list[dict[str, Any]], title: str) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for run in runs:
        xs = [s["consultations"] for s in run["steps"]]
        axes[0].plot(xs, [s["server_cpu_pct"] for s in run["steps"]], "o-", label=run["label"])
        axes[1].plot(xs, [s["first_frame_p95_s"] for s in run["steps"]], "o-", label=run["label"])
        axes[2].plot(xs, [s["delivered_fps"] for s in run["steps"]], "o-", label=run["label"])
        mark_contended(axes, run["steps"], label=run is runs[0])
    axes[0].axhline(100, color="grey", ls=":", lw=1)
    axes[0].set(xlabel="concurrent 1:1 consultations", ylabel="server CPU (% of one core)", title="server CPU")
    axes[1].axhline(FIRST_FRAME_P95_MAX_S, color="red", ls="--", lw=1, label="limit")
    axes[1].set(xlabel="concurrent 1:1 consultations", ylabel="seconds", title="join → first frame, p95")
    axes[2].axhline(FPS_MIN_FRACTION * SENT_FPS, color="red", ls="--", lw=1, label="limit")
    axes[2].set(xlabel="concurrent 1:1 consultations", ylabel="fps", title="delivered video fps (30 sent)")
    return save_plot(fig, axes, name, title, 8)


def mark_contended(axes: Any, steps: list[dict[str, Any]], label: bool = True) -> None:
    """Circle the steps during which the server or load generator waited > 25 % of the time for a CPU (other
    processes, or their own threads, held it)."""
    hot = [s for s in steps if s.get("contended")]
    for ax, key in zip(axes, ("server_cpu_pct", "first_frame_p95_s", "delivered_fps"), strict=True):
        ax.plot([s["consultations"] for s in hot], [s[key] for s in hot], "o", ms=12, mfc="none", mec="grey",
                label="contended: waited > 25 % for a CPU" if hot and label else None)


def parse_steps(text: str) -> list[int]:
    steps = [int(x) for x in text.split(",") if x]
    if not steps or steps != sorted(set(steps)) or steps[0] < 1 or steps[-1] > 200:
        raise argparse.ArgumentTypeError("increasing integers 1..200")
    return steps


def add_common_args(parser: argparse.ArgumentParser, steps: str) -> None:
    parser.add_argument("--steps", type=parse_steps, default=parse_steps(steps),
                        help=f"concurrent consultations at each step (default {steps})")
    parser.add_argument("--measure-s", type=float, default=5.0, help="measured seconds per step")
    parser.add_argument("--settle-s", type=float, default=1.5, help="seconds after adding, before measuring")
    parser.add_argument("--gap-s", type=float, default=0.1, help="seconds between consultation starts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "2,4,8,12,16,20,24,28,32,36,40")
    parser.add_argument("--baseline-steps", type=parse_steps, default=parse_steps("1,2,3,4,5,6"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--load-processes", type=int, default=1)
    args = parser.parse_args()
    before = machine()
    server_cpus_list, load_cpus = cpu_plan(1)
    server_cpus = server_cpus_list[0]
    t0 = time.monotonic()
    sfu, clip, where = run_sfu(args, server_cpus, load_cpus)
    runs = [sfu]
    baseline = None
    if not args.skip_baseline:
        baseline, where_b = run_baseline(args, server_cpus, load_cpus)
        where.update(where_b)
        runs.append(baseline)
    result: dict[str, Any] = {
        "scenario": "video_ramp", "video": clip, "thresholds": {
            "first_frame_p95_max_s": FIRST_FRAME_P95_MAX_S, "delivered_fps_min": FPS_MIN_FRACTION * SENT_FPS,
            "packet_loss_max": LOSS_MAX},
        "capacity_consultations": sfu["capacity"], "capacity_is_lower_bound": sfu["capacity_is_lower_bound"],
        "consultations_per_core": sfu["capacity"],
        "degraded_at": sfu["degraded_at"], "degraded_because": sfu["degraded_because"],
        "server_cpu_pct_per_consultation": sfu["server_cpu_pct_per_consultation"],
        "consultations_per_core_cpu_estimate": sfu["consultations_per_core_cpu_estimate"],
        "load_generator_saturated_at_limit": sfu["load_generator_saturated_at_limit"],
    }
    if baseline is not None:
        result.update({
            "baseline": "aiortc MediaRelay (decode + re-encode per subscriber)",
            "baseline_capacity_consultations": baseline["capacity"],
            "baseline_degraded_at": baseline["degraded_at"],
            "baseline_server_cpu_pct_per_consultation": baseline["server_cpu_pct_per_consultation"],
            "cpu_ratio_baseline_over_sfu": (round(baseline["server_cpu_pct_per_consultation"]
                                                  / sfu["server_cpu_pct_per_consultation"], 1)
                                            if baseline["server_cpu_pct_per_consultation"]
                                            and sfu["server_cpu_pct_per_consultation"] else None),
            "capacity_ratio_sfu_over_baseline": (round(sfu["capacity"] / baseline["capacity"], 1)
                                                 if sfu["capacity"] and baseline["capacity"] else None),
        })
    title = (f"video_ramp: nettlege SFU vs aiortc MediaRelay, 1 server process on CPU {server_cpus}, load on "
             f"{load_cpus}; loadavg {before['loadavg_1_5_15']}")
    result["plot"] = plot("video_ramp", runs, title)
    result.update({"runs": runs, "where": {**where, "network": "127.0.0.1", **machine(), "loadavg_before": before[
        "loadavg_1_5_15"]}, "wall_s": round(time.monotonic() - t0, 1)})
    record("scenarios.video_ramp", result, before)


if __name__ == "__main__":
    main()
