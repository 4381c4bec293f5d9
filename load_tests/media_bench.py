"""Media benchmark: server CPU per 1:1 consultation for the pass-through SFU and, in the same invocation, for
aiortc's transcoding `MediaRelay` under the same kind of load (the same 1:1 consultations and streams; by
default at most 2 of them, since one core cannot transcode more without saturating).

    python -m load_tests.media_bench --consultations 10 [--duration 8] [--runs 1] [--workers 1]

Each server runs in its own process (CPU measured with psutil on its pid); load generators
(`load_tests.media_load`) run in other processes. With two or more cores the server gets core 0 to itself and
the load generators the others, as DESIGN.md asks of media processes. Traffic stays on 127.0.0.1.
The last line of output is one JSON object; fractions are fractions, times seconds, CPU % of one core;
figures are medians over runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

import psutil


def _pin(pid: int, cores: list[int]) -> None:
    try:
        psutil.Process(pid).cpu_affinity(cores)
    except (AttributeError, psutil.Error):
        pass


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _server_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.load(response)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def run_once(mode: str, consultations: int, duration: float, workers: int) -> dict[str, Any]:
    cores = list(range(os.cpu_count() or 1))
    server_cores, load_cores = (cores[:1], cores[1:]) if len(cores) >= 2 else (cores, cores)
    server = subprocess.Popen([sys.executable, "-m", "load_tests.media_server", "--mode", mode],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        _pin(server.pid, server_cores)
        process = psutil.Process(server.pid)
        # Clip encoding (~1 s), joins (one consultation per 50 ms plus negotiation), then 2 s to settle.
        measure_at = time.time() + 3.0 + 0.15 * consultations
        share = [consultations // workers + (i < consultations % workers) for i in range(workers)]
        loads = []
        for i, count in enumerate(c for c in share if c):
            load = subprocess.Popen(
                [sys.executable, "-m", "load_tests.media_load", "--url", f"http://127.0.0.1:{port}",
                 "--consultations", str(count), "--prefix", f"w{i}", "--measure-at", str(measure_at),
                 "--duration", str(duration)], stdout=subprocess.PIPE, text=True)
            _pin(load.pid, load_cores)
            loads.append(load)
        time.sleep(max(0.0, measure_at - time.time()))
        psutil.cpu_percent()  # starts the host-wide measurement
        # /stats costs the server CPU (getStats on every peer connection): keep it outside the CPU window.
        stats_start = _server_stats(port)
        cpu_start, t_start = _cpu_seconds(process), time.monotonic()
        time.sleep(duration)
        cpu_end, t_end = _cpu_seconds(process), time.monotonic()
        stats_end = _server_stats(port)
        host_cpu_pct = psutil.cpu_percent() * (os.cpu_count() or 1)
        results = []
        for load in loads:
            out, _ = load.communicate(timeout=60 + duration)
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(10)
    elapsed = t_end - t_start
    cpu_pct = 100 * (cpu_end - cpu_start) / elapsed
    forwarded = stats_end["forwarded_packets"] - stats_start["forwarded_packets"]
    received = sum(r["packets_received"] for r in results)
    lost = sum(r["packets_lost"] for r in results)
    up_received = stats_end["inbound_packets_received"] - stats_start["inbound_packets_received"]
    up_lost = stats_end["inbound_packets_lost"] - stats_start["inbound_packets_lost"]
    # aiortc's packetsLost can go down (late and duplicate packets), so a window's difference can be < 0.
    uplink = max(0, up_lost) / (up_received + up_lost) if up_received + up_lost > 0 else 0.0
    downlink = max(0, lost) / (received + lost) if received + lost > 0 else 0.0
    first_frames = [f for r in results for f in r["first_frame_s"]]
    clients = sum(r["clients"] for r in results)
    return {
        "cpu_pct": cpu_pct,
        "cpu_pct_per_consult": cpu_pct / consultations,
        "us_per_packet": 1e6 * (cpu_end - cpu_start) / forwarded if forwarded else None,
        "forwarded_pps": forwarded / elapsed,
        "first_frame_p50_s": _percentile(first_frames, 0.5),
        "first_frame_p95_s": _percentile(first_frames, 0.95),
        "no_picture": sum(r["no_picture"] for r in results),
        "errors": sum(r["errors"] for r in results),
        # Publisher -> server (the server's receivers) and server -> subscriber (the clients' receivers).
        # Forwarding renumbers packets, so a subscriber never sees what the server lost: both are needed.
        "packet_loss": 1 - (1 - uplink) * (1 - downlink),
        "packet_loss_uplink": uplink,
        "packet_loss_downlink": downlink,
        # Datagrams the kernel dropped because a receive buffer was full (host-wide, all processes).
        "udp_rcvbuf_errors": stats_end["udp_rcvbuf_errors"] - stats_start["udp_rcvbuf_errors"],
        "delivered_fps": sum(r["video_frames"] for r in results) / clients / results[0]["duration"],
        # What the load generators managed to send: below 30 means they were starved of CPU, not the server.
        "published_fps": sum(r["published_video_frames"] for r in results) / clients / results[0]["duration"],
        # Every process on the machine during the window, % of one core; a shared machine skews figures.
        "host_cpu_pct": host_cpu_pct,
        "loadavg_1m": os.getloadavg()[0],
        "received_video_kbps": 8 * sum(r["bytes"] for r in results) / clients / results[0]["duration"] / 1000,
        "published_video_kbps": results[0]["published_video_kbps"],
        "server_cores": len(server_cores),
    }


def _median(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs if r[key] is not None]
    return round(statistics.median(values), 4) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=4)
    parser.add_argument("--baseline-consultations", type=int, default=2,
                        help="1:1 consultations for the transcoding baseline (default 2, at most --consultations):"
                             " one core transcodes only two or three, and a saturated process under-reports its"
                             " cost per consultation")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run and server")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    baseline_n = min(args.baseline_consultations, args.consultations)

    sfu_runs, baseline_runs = [], []
    for run in range(args.runs):
        sfu_runs.append(run_once("sfu", args.consultations, args.duration, args.workers))
        print(json.dumps({"run": run, "server": "sfu", **sfu_runs[-1]}), file=sys.stderr, flush=True)
        if not args.skip_baseline:
            baseline_runs.append(run_once("baseline", baseline_n, args.duration, args.workers))
            print(json.dumps({"run": run, "server": "baseline", **baseline_runs[-1]}), file=sys.stderr, flush=True)

    keys = ["cpu_pct_per_consult", "us_per_packet", "first_frame_p50_s", "first_frame_p95_s", "packet_loss",
            "packet_loss_uplink", "packet_loss_downlink", "udp_rcvbuf_errors", "delivered_fps", "published_fps",
            "received_video_kbps", "forwarded_pps", "cpu_pct", "host_cpu_pct", "loadavg_1m"]
    result: dict[str, Any] = {"consultations": args.consultations, "runs": args.runs, "duration_s": args.duration}
    result.update({k: _median(sfu_runs, k) for k in keys})
    result["no_picture"] = max(r["no_picture"] for r in sfu_runs)
    result["consultations_per_core"] = (round(100 / result["cpu_pct_per_consult"], 1)
                                        if result["cpu_pct_per_consult"] else None)
    result["published_video_kbps"] = round(sfu_runs[0]["published_video_kbps"])
    if baseline_runs:
        result["baseline_consultations"] = baseline_n
        result["baseline_cpu_pct_per_consult"] = _median(baseline_runs, "cpu_pct_per_consult")
        result["baseline_delivered_fps"] = _median(baseline_runs, "delivered_fps")
        result["baseline_first_frame_p95_s"] = _median(baseline_runs, "first_frame_p95_s")
        server_capacity = 100 * baseline_runs[0]["server_cores"]
        result["baseline_saturated"] = _median(baseline_runs, "cpu_pct") > 0.9 * server_capacity
        result["cpu_ratio"] = (round(result["baseline_cpu_pct_per_consult"] / result["cpu_pct_per_consult"], 1)
                               if result["cpu_pct_per_consult"] else None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
