"""Where the CPU of one take-next goes in `nettlege serve`, stage by stage (docs/capacity.md "Queue operations:
profile").

    python -m load_tests.queue_profile [--takes 5000] [--clinicians 126]

One `nettlege serve` on CPU 0 (taskset) with a private redis-server, as queue_bench starts it, but under a sampling
profiler: SIGPROF on the server's own CPU time (ITIMER_PROF: the kernel's tick, a sample every few ms of CPU) records
the Python stack, so a sample costs a few microseconds and the server runs at almost its usual speed (cProfile
inflated redis-py's many small parser calls ~9x). `--takes` tickets wait; take-next is called one at a time over
HTTP by `--clinicians` clinicians in turn (each stays under the 60 writes/min limit). Each sample is given to the
first stage (in the order below) found on its stack; a stage's share of the samples times the server's CPU per take
over the same takes (from /proc, the sampler's own few % included) is its µs per take. Stages that run beside the
request (the event hub reading the take's own events back, the periodic rounds) are listed apart. Prints one JSON
line; not appended to results (a profile, not a benchmark figure).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import runpy
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from .harness import cpu_plan, dev_token, machine, nettlege_server, percentile, pin, redis_pid, redis_server, taskset
from .queue_bench import Ops, prefill

STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP request parse (aiohttp)", ("web_protocol.py:data_received",)),
    ("auth: verify the bearer token", ("signaling/identity.py:verify",)),
    ("take: the Redis script call (pack, send, read, parse)", ("commands/core.py:__call__",)),
    ("take: the rest of QueueStore.take_next (arguments, sealing, ticket and consultation objects)",
     ("rooms/queue.py:take_next",)),
    ("take: Rooms.take_next (node choice, rate slot)", ("rooms/service.py:take_next",)),
    ("route: view, ticket_out", ("signaling/api/queue.py:take_next",)),
    ("response: model to JSON", ("signaling/http.py:handler",)),
    ("middlewares (metrics, headers, errors)", ("signaling/app.py:observe", "signaling/app.py:forwarded",
                                                "messages.py:localize_errors", "http.py:error_middleware",
                                                "store_health.py:replicated")),
    ("aiohttp request handling and writing the answer", ("web_protocol.py:_handle_request",
                                                         "web_protocol.py:finish_response",
                                                         "web_protocol.py:start")),
    ("beside the request: event hub reading the take's own events back", ("rooms/events.py",)),
    ("beside the request: periodic rounds (retention sweep, audit sealing, heartbeats)",
     ("signaling/periodic.py", "rooms/nodes.py", "audit_seal.py")),
]
OTHER = "event loop, selector, transports (not attributable)"


def _sampler(argv: list[str]) -> None:
    """Inside the server process: run `python -m MODULE ...` with the sampler, which SIGUSR1 starts (clearing what
    it had) and SIGUSR2 stops, writing the stacks to $QUEUE_PROFILE_OUT."""
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    out = os.environ["QUEUE_PROFILE_OUT"]

    def sample(_sig: int, frame: Any) -> None:
        names = []
        while frame is not None:
            names.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
            frame = frame.f_back
        stacks[tuple(names)] += 1

    def start(*_: Any) -> None:
        stacks.clear()
        signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)

    def stop(*_: Any) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        Path(out).write_text(json.dumps([[list(k), v] for k, v in stacks.items()]))

    signal.signal(signal.SIGPROF, sample)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    module = argv[argv.index("-m") + 1]
    sys.argv = [module, *argv[argv.index("-m") + 2:]]
    sys.path.insert(0, os.getcwd())
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def stages(stacks: list[tuple[list[str], int]], cpu_us_per_take: float) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for stack, n in stacks:
        label = next((name for name, marks in STAGES if any(m in f for f in stack for m in marks)), OTHER)
        counts[label] += n
    total = sum(counts.values()) or 1
    return {name: round(counts[name] / total * cpu_us_per_take) for name, _ in [*STAGES, (OTHER, ())]}


async def profile(args: argparse.Namespace) -> dict[str, Any]:
    (server_cpus,), load_cpus = cpu_plan(1)
    out = Path(tempfile.mkdtemp(prefix="queue-profile-")) / "stacks.json"
    os.environ["QUEUE_PROFILE_OUT"] = str(out)
    prefix = [*taskset(server_cpus), sys.executable, "-m", "load_tests.queue_profile", "--sampler"]
    with redis_server() as redis_url:
        pin(redis_pid(redis_url), load_cpus)
        await prefill(redis_url, args.takes + 2 * args.clinicians)
        with nettlege_server(redis_url, prefix=prefix) as server:
            doctors = [dev_token(f"prof-{i}", "clinician") for i in range(args.clinicians)]
            async with aiohttp.ClientSession() as http:
                warm = Ops(http, server.base)
                for t in doctors:  # every token verified once, every connection open
                    await warm.take(t)
                proc = psutil.Process(server.proc.pid)
                cpu0 = sum(proc.cpu_times()[:2])
                os.kill(server.proc.pid, signal.SIGUSR1)
                ops = Ops(http, server.base)
                t0 = time.perf_counter()
                for i in range(args.takes):
                    await ops.take(doctors[i % len(doctors)])
                wall = time.perf_counter() - t0
                os.kill(server.proc.pid, signal.SIGUSR2)
                cpu = sum(proc.cpu_times()[:2]) - cpu0
                for _ in range(50):
                    if out.exists():
                        break
                    await asyncio.sleep(0.1)
    taken = len(ops.latency["take"])
    cpu_us = cpu / max(1, taken) * 1e6
    stacks = json.loads(out.read_text())
    p50 = percentile(ops.latency["take"], 50) or 0.0
    return {"takes": taken, "errors": dict(ops.errors), "take_p50_s": round(p50, 6),
            "wall_per_take_s": round(wall / max(1, taken), 6), "server_cpu_us_per_take": round(cpu_us),
            "samples": sum(n for _, n in stacks), "stages_us_per_take": stages(stacks, cpu_us),
            "machine": machine(), "where": f"server on CPU {server_cpus}; load and redis-server on {load_cpus}"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sampler":
        _sampler(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--takes", type=int, default=5000)
    parser.add_argument("--clinicians", type=int, default=126)
    result = asyncio.run(profile(parser.parse_args()))
    for name, us in result["stages_us_per_take"].items():
        print(f"{us:6d} us  {name}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
