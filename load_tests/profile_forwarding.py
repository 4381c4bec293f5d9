"""Where the SFU's CPU goes per RTP packet: `load_tests.media_server` under cProfile, fed by `media_bench`'s clients.

    .venv/bin/python -m load_tests.profile_forwarding --consultations 2 --duration 10

Prints, per stage of the forwarding path, the server's CPU time per published packet (received by the
server) in µs, taken from cProfile's own-time (`tottime`) of the functions that make up each stage. The
profiler's clock is the process's CPU time, not the wall clock, so time spent waiting for a CPU on a busy
machine is not counted. cProfile adds its own overhead per Python call, so absolute figures are higher than
without it; the breakdown (which stage costs what share) is what the profile is for. Figures go into
docs/capacity.md.

    .venv/bin/python -m load_tests.profile_forwarding --server nettlege --consultations 4 --duration 45

profiles `nettlege serve` itself, started as media_bench starts it (private redis-server, CPU 0), with K
consultations of media_bench's clients, under load_tests.queue_profile's SIGPROF sampler of the server's own
CPU time (a few µs per sample, so the server runs at almost its usual speed) over the `--duration` window.
Prints one JSON object: the server's % of a core (from /proc), and that split by what each sample was doing
(`by_class_core_pct`: the per-packet path, the periodic work per peer, the event loop's own work, signaling),
by the callback the loop was running and by the innermost function.
"""

from __future__ import annotations

import argparse
import json
import pstats
import signal
import subprocess
import sys
import tempfile
import urllib.request
from typing import Any

from load_tests.harness import Worker
from load_tests.media_bench import load_generator

# Stage -> (file fragment, function name) pairs whose own time (tottime) adds up to that stage.
STAGES: dict[str, list[tuple[str, str]]] = {
    "socket recvfrom + aioice datagram": [("aioice/ice.py", "datagram_received"), ("aioice/ice.py", "_recv"),
                                          ("aioice/ice.py", "recv"), ("aiortc/rtcicetransport.py", "_recv")],
    "SRTP unprotect": [("pylibsrtp", "unprotect"), ("pylibsrtp", "unprotect_rtcp"),
                       ("~", "<built-in method _cffi_backend"), ("aiortc/rtp.py", "is_rtcp")],
    "DTLS transport dispatch": [("aiortc/rtcdtlstransport.py", "_recv_next"),
                                ("aiortc/rtcdtlstransport.py", "_handle_rtp_data"),
                                ("aiortc/rtcdtlstransport.py", "route_rtp"), ("aiortc/rtcdtlstransport.py", "__run"),
                                ("media/aiortc_passthrough.py", "handle_rtp_data")],
    "RTP parse": [("aiortc/rtp.py", "parse"), ("aiortc/rtp.py", "unpack_header_extensions"),
                  ("aiortc/rtp.py", "__init__"), ("aiortc/rtp.py", "__call__"),
                  ("media/rtp_header.py", "parse_rtp_header"), ("media/rtp_header.py", "_read_extensions"),
                  ("media/rtp_header.py", "__init__")],
    "receiver (stats, NACK, bitrate estimate)": [("aiortc/rtcrtpreceiver.py", "_handle_rtp_packet"),
                                                 ("media/aiortc_passthrough.py", "handle"),
                                                 ("aiortc/rtcrtpreceiver.py", "add"), ("aiortc/rate.py", ""),
                                                 ("aiortc/clock.py", ""), ("aiortc/utils.py", ""),
                                                 ("media/nack.py", ""), ("media/twcc.py", "")],
    "depayload + jitter buffer (frame path)": [("aiortc/codecs/vpx.py", "parse"), ("aiortc/codecs/vpx.py", "depayload"),
                                               ("aiortc/codecs/__init__.py", "depayload"),
                                               ("aiortc/codecs/h264.py", ""), ("aiortc/jitterbuffer.py", ""),
                                               ("media/aiortc_passthrough.py", "add"),
                                               ("media/aiortc_passthrough.py", "_remove_frame"),
                                               ("media/aiortc_passthrough.py", "put")],
    "SFU fan-out (publisher, forwarder, rewrite)": [("media/publisher.py", ""), ("media/forwarder.py", ""),
                                                    ("media/payload.py", ""), ("media/rtp.py", ""),
                                                    ("media/bandwidth.py", "")],
    "sender (frame queue, packer, history)": [("aiortc/rtcrtpsender.py", ""), ("media/aiortc_passthrough.py", "pack"),
                                              ("media/aiortc_passthrough.py", "send"),
                                              ("media/aiortc_passthrough.py", "remb"),
                                              ("media/aiortc_passthrough.py", "send_rtp"),
                                              ("media/aiortc_passthrough.py", "_forward"),
                                              ("media/aiortc_passthrough.py", "__init__"),
                                              ("media/aiortc_passthrough.py", "_ntp_now"),
                                              ("aiortc/rtp.py", "wrap_rtx")],
    "RTP serialize": [("aiortc/rtp.py", "serialize"), ("aiortc/rtp.py", "pack_header_extensions"),
                      ("aiortc/rtp.py", "pack"), ("media/rtp_header.py", "write")],
    "SRTP protect": [("pylibsrtp", "protect"), ("pylibsrtp", "protect_rtcp"),
                     ("aiortc/rtcdtlstransport.py", "_send_rtp")],
    "sendto (aioice + asyncio + kernel)": [("aioice/ice.py", "send"), ("aioice/ice.py", "sendto"),
                                           ("aioice/ice.py", "send_data"), ("aiortc/rtcicetransport.py", "_send"),
                                           ("asyncio/selector_events.py", "sendto"),
                                           ("~", "<method 'sendto' of '_socket.socket' objects>")],
    "event loop (callbacks, tasks, queues)": [("asyncio/base_events.py", "_run_once"), ("asyncio/events.py", "_run"),
                                              ("selectors.py", "select"),
                                              ("asyncio/selector_events.py", "_read_ready"),
                                              ("asyncio/selector_events.py", "_read_ready__data_received"),
                                              ("~", "<method 'recvfrom' of '_socket.socket' objects>"),
                                              ("asyncio/locks.py", ""), ("asyncio/queues.py", ""),
                                              ("asyncio/tasks.py", ""), ("asyncio/futures.py", "")],
}


def _match(key: tuple[str, int, str], file_part: str, name: str) -> bool:
    filename, _, function = key
    if file_part == "~":
        return filename == "~" and function.startswith(name)
    return file_part in filename and (not name or function == name)


IDLE = ("~", "<method 'poll' of 'select.epoll'")  # waiting for datagrams: not CPU


def breakdown(profile_path: str) -> tuple[dict[str, float], float, int]:
    """µs per received RTP packet per stage, the profiled total, and the packet count, from a cProfile dump.
    Packets are counted by the profile itself (calls of aiortc's RTP dispatch), so joins and warm-up are
    on both sides of the division."""
    stats = pstats.Stats(profile_path).stats  # type: ignore[attr-defined]
    packets = sum(v[0] for k, v in stats.items() if k[0].endswith("aiortc/rtcdtlstransport.py")
                  and k[2] == "_handle_rtp_data")
    used = {k for k in stats if _match(k, *IDLE)}
    result: dict[str, float] = {}
    for stage, patterns in STAGES.items():
        total = 0.0
        for key, (_, _, tottime, _, _) in stats.items():
            if key not in used and any(_match(key, f, n) for f, n in patterns):
                used.add(key)
                total += tottime
        result[stage] = 1e6 * total / packets
    idle = sum(v[2] for k, v in stats.items() if _match(k, *IDLE))
    everything = sum(v[2] for v in stats.values()) - idle
    result["everything else"] = 1e6 * (everything + idle - sum(v[2] for k, v in stats.items() if k in used)) / packets
    return result, 1e6 * everything / packets, packets


# media_server under a CPU-time profiler (its own NETTLEGE_MEDIA_PROFILE one uses the wall clock).
SERVER = """
import cProfile, sys, time
from load_tests import media_server
sys.argv = ["media_server", "--mode", "sfu"]
profiler = cProfile.Profile(time.process_time)
profiler.enable()
try:
    media_server.main()
finally:
    profiler.disable()
    profiler.dump_stats({path!r})
"""


def _stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        return json.loads(response.read())


# --- `nettlege serve` as deployed, under a sampling profiler ---------------------------------------------

# What a sample of the server's CPU was spent on: the first class whose marks appear anywhere on its stack.
CLASSES: list[tuple[str, tuple[str, ...]]] = [
    ("per packet: transport-cc feedback (built and sent every 100 ms per transport)",
     ("media/twcc.py:take_feedback", "media/twcc.py:encode_feedback")),
    ("per packet: RTCP received (receiver/sender reports, NACK, REMB, PLI)",
     ("rtcdtlstransport.py:_handle_rtcp_data",)),
    ("per packet: RTP received, rewritten and sent on", ("media/aiortc_passthrough.py:data_received",
                                                         "media/aiortc_passthrough.py:datagram_received",
                                                         "media/aiortc_passthrough.py:_handle_srtp")),
    ("periodic: aiortc RTCP reports (SR/RR every ~1 s per sender and receiver)", ("rtcrtpsender.py:_run_rtcp",
                                                                                 "rtcrtpreceiver.py:_run_rtcp")),
    ("periodic: signaling liveness (pings, presence)", ("signaling/liveness.py",)),
    ("periodic: ICE consent, stats sampling", ("consent", "sample_stats", "getStats", "media/room.py")),
    ("signaling, Redis, periodic rounds (HTTP, WebSocket, store)", ("signaling/", "aiohttp/", "redis/", "rooms/",
                                                                    "chat/", "socketio/", "engineio/")),
]
LOOP = "event loop: select, scheduling, calling callbacks"
RECVFROM = "per packet: socket recvfrom (asyncio's UDP transport)"
OTHER_CALLBACKS = "other callbacks (timers, futures, tasks)"


def classify(stack: list[str]) -> str:
    """Only the frames of the callback the event loop was running count (innermost first); a sample outside
    any callback is the loop's own work."""
    run = next((i for i, frame in enumerate(stack) if frame.endswith("asyncio/events.py:_run")), None)
    if run is None:
        return LOOP
    inner = stack[:run]
    if not inner:
        return LOOP  # the loop calling the callback
    if len(inner) == 1 and inner[0].endswith("asyncio/selector_events.py:_read_ready"):
        return RECVFROM  # a UDP transport's recvfrom (C) before the datagram is handed on
    for name, marks in CLASSES:
        if any(m in frame for frame in inner for m in marks):
            return name
    return OTHER_CALLBACKS


def _entry(stack: list[str]) -> str:
    """The callback or task the event loop was running when a sample was taken (the frame just above the loop's
    `Handle._run`), or the outermost frame."""
    for i, frame in enumerate(stack):
        if frame.endswith("asyncio/events.py:_run"):
            return stack[i - 1] if i else frame
    return stack[-1] if stack else "?"


def _short(frame: str) -> str:
    path, _, name = frame.rpartition(":")
    parts = path.split("/")
    return f"{'/'.join(parts[-2:])}:{name}"


def serve_profile(args: argparse.Namespace) -> dict[str, Any]:
    """`nettlege serve` started as media_bench starts it (private Redis, CPU 0), K consultations of media_bench's
    clients, a SIGPROF sampler of the server's own CPU time over the window (load_tests.queue_profile's)."""
    import os
    import time

    import psutil

    from load_tests.harness import cpu_plan, machine, nettlege_server, pin, redis_pid, redis_server, taskset

    (server_cpus,), load_cpus = cpu_plan(1)
    out = tempfile.mkdtemp(prefix="media-profile-") + "/stacks.json"
    os.environ["QUEUE_PROFILE_OUT"] = out
    prefix = [*taskset(server_cpus), sys.executable, "-m", "load_tests.queue_profile", "--sampler"]
    started = machine()
    load = Worker(load_generator, load_cpus)
    try:
        load.call("setup", timeout=120, transport_cc=args.transport_cc)
        with redis_server() as redis_url:
            pin(redis_pid(redis_url), load_cpus)
            with nettlege_server(redis_url, prefix=prefix) as server:
                added = load.call("add", timeout=60 + 5 * args.consultations, server="nettlege",
                                  url=server.base, n=args.consultations)
                time.sleep(args.settle)
                proc = psutil.Process(server.proc.pid)
                cpu0 = sum(proc.cpu_times()[:2])
                os.kill(server.proc.pid, signal.SIGUSR1)
                window = load.call("measure", timeout=60 + args.duration, duration=args.duration)
                os.kill(server.proc.pid, signal.SIGUSR2)
                cpu = sum(proc.cpu_times()[:2]) - cpu0
                for _ in range(50):
                    if os.path.exists(out):
                        break
                    time.sleep(0.1)
                load.call("close", timeout=60)
    finally:
        load.close()
    with open(out) as f:
        stacks = [(list(s), n) for s, n in json.load(f)]
    samples = sum(n for _, n in stacks) or 1
    seconds = window["seconds"]
    core_pct = 100 * cpu / seconds
    entries: dict[str, int] = {}
    leaves: dict[str, int] = {}
    files: dict[str, int] = {}
    classes: dict[str, int] = {name: 0 for name, _ in [*CLASSES, (RECVFROM, ()), (LOOP, ()), (OTHER_CALLBACKS, ())]}
    for stack, n in stacks:
        classes[classify(stack)] += n
        e = _short(_entry(stack))
        entries[e] = entries.get(e, 0) + n
        leaf = _short(stack[0]) if stack else "?"
        leaves[leaf] = leaves.get(leaf, 0) + n
        for f in {fr.rpartition(":")[0].split("site-packages/")[-1].split("/work/main/")[-1] for fr in stack}:
            files[f] = files.get(f, 0) + n

    def pct(table: dict[str, int], top: int) -> dict[str, float]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return {k: round(core_pct * v / samples, 3) for k, v in ranked}

    return {"consultations": args.consultations, "seconds": round(seconds, 2), "samples": samples,
            "server_core_pct": round(core_pct, 2),
            "core_pct_per_consultation": round(core_pct / max(1, args.consultations), 2),
            "published_packets": window["published_packets"], "received_packets": window["received_packets"],
            "fps": [round(x, 1) for x in window["fps"]], "no_picture": added["no_picture"],
            "cpu_us_per_published_packet": round(1e6 * cpu / max(1, window["published_packets"]), 1),
            "by_class_core_pct": {k: round(core_pct * v / samples, 3) for k, v in classes.items()},
            "by_entry_core_pct": pct(entries, args.top or 40), "by_leaf_core_pct": pct(leaves, args.top or 40),
            "by_file_inclusive_core_pct": pct(files, args.top or 40),
            "loadavg_1_5_15": started["loadavg_1_5_15"], "stacks_file": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=0, help="also print the N functions with most own time")
    parser.add_argument("--transport-cc", action=argparse.BooleanOptionalAction, default=True,
                        help="publishers offer transport-cc and use it when answered with it, as browsers do")
    parser.add_argument("--server", choices=["sfu", "nettlege"], default="sfu",
                        help="sfu: load_tests.media_server under cProfile (per-stage table); nettlege: `nettlege "
                             "serve` as media_bench starts it, under a SIGPROF sampler (JSON: CPU by entry point)")
    parser.add_argument("--settle", type=float, default=2.0, help="nettlege: seconds between the joins and the window")
    args = parser.parse_args()
    if args.server == "nettlege":
        print(json.dumps(serve_profile(args)), flush=True)
        return
    profile_path = tempfile.mktemp(prefix="nettlege-forwarding-", suffix=".prof")
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(path=profile_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        load = Worker(load_generator, [])
        try:
            load.call("setup", timeout=120, transport_cc=args.transport_cc)
            load.call("add", timeout=120, server="relay", url=f"http://127.0.0.1:{port}", n=args.consultations,
                      sample=False)  # media_server speaks the relay's bare offer/answer in both modes
            window = load.call("measure", timeout=60 + args.duration, duration=args.duration - 0.3)
            # Read while the clients are still connected (their peer connections hold the receive counters).
            counters = _stats(port)
        finally:
            load.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    # The profile covers the whole run (joins included); packets are the whole run's too.
    stages, total, received = breakdown(profile_path)
    fps = sum(window["fps"]) / max(1, len(window["fps"]))
    forwarded = counters["forwarded_packets"]
    print(f"consultations={args.consultations} RTP packets received (profiled)={received} "
          f"forwarded by {args.duration - 0.3:.1f} s of the window={forwarded} "
          f"delivered video fps={fps:.1f}")
    print(f"{'stage':48} µs per received RTP packet (cProfile tottime)")
    for stage, value in stages.items():
        print(f"{stage:48} {value:8.1f}")
    print(f"{'total (profiled)':48} {total:8.1f}")
    if args.top:
        pstats.Stats(profile_path).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
