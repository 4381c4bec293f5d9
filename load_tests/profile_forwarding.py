"""Where the SFU's CPU goes per RTP packet: `load_tests.media_server` under cProfile, fed by `media_bench`'s clients.

    .venv/bin/python -m load_tests.profile_forwarding --consultations 2 --duration 10

Prints, per stage of the forwarding path, the server's CPU time per published packet (received by the
server) in µs, taken from cProfile's own-time (`tottime`) of the functions that make up each stage. The
profiler's clock is the process's CPU time, not the wall clock, so time spent waiting for a CPU on a busy
machine is not counted. cProfile adds its own overhead per Python call, so absolute figures are higher than
without it; the breakdown (which stage costs what share) is what the profile is for. Figures go into
docs/capacity.md.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=0, help="also print the N functions with most own time")
    parser.add_argument("--transport-cc", action=argparse.BooleanOptionalAction, default=True,
                        help="publishers offer transport-cc and use it when answered with it, as browsers do")
    args = parser.parse_args()
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
