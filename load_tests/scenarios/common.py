"""Shared by the scenarios: CPU plans and pinning, CPU meters on server processes, load-generator
subprocesses spoken to in JSON lines, dev tokens, JSON output and plot paths."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent.parent / "results"
TENANT, SERVICE = "bench", "nettlege"
SECRET = "bench-secret-" + "x" * 32  # what load_tests._procs.nettlege_server gives the server
ORIGIN = "http://load.test"


def cpus() -> list[int]:
    """This machine's CPUs, the server's first: CPU 0 unless NETTLEGE_BENCH_SERVER_CPU names another (the other
    benchmarks in load_tests also put their server on CPU 0, so two of them at once contend there)."""
    found = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    first = int(os.environ.get("NETTLEGE_BENCH_SERVER_CPU", found[0]))
    return [first, *(c for c in found if c != first)] if first in found else found


def cpu_plan(server_processes: int = 1) -> tuple[list[list[int]], list[int]]:
    """(CPUs for each server process, CPUs for load generators and Redis).

    With more CPUs than server processes each server gets one to itself and the load the rest; otherwise
    (2 servers on 2 CPUs) each server gets one and the load generators float over all of them."""
    all_cpus = cpus()
    if len(all_cpus) > server_processes:
        return [[c] for c in all_cpus[:server_processes]], all_cpus[server_processes:]
    if len(all_cpus) == server_processes:
        return [[c] for c in all_cpus], all_cpus
    return [all_cpus for _ in range(server_processes)], all_cpus


def pin(pid: int, cpu_list: list[int]) -> None:
    try:
        psutil.Process(pid).cpu_affinity(cpu_list)
    except (AttributeError, psutil.Error):
        pass


def redis_pid(redis_url: str) -> int | None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "redis-server" and port in " ".join(p.info["cmdline"] or []):
            return p.pid
    return None


class CpuMeter:
    """CPU of some processes over a window, in % of one core (user + system)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.waited: dict[str, float] = {}  # % of the window spent runnable but not running (CPU taken by others)
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    @staticmethod
    def _seconds(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    @staticmethod
    def _waited(p: psutil.Process) -> float:
        """Seconds this process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
        total = 0
        for task in Path(f"/proc/{p.pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(task.read_text().split()[1])
        return total / 1e9

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: self._seconds(p) for name, p in self.procs.items()}
        self._wait0 = {name: self._waited(p) for name, p in self.procs.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        self.waited = {name: round(100 * (self._waited(p) - self._wait0[name]) / elapsed, 1)
                       for name, p in self.procs.items()}
        return {name: round(100 * (self._seconds(p) - self._start[name]) / elapsed, 1)
                for name, p in self.procs.items()}


class MachineMeter:
    """Busy % of each CPU over a window (all processes, anyone's): with the server's own CPU subtracted, what
    other people's work took from the cores the benchmark thought it had."""

    @staticmethod
    def _busy() -> list[tuple[float, float]]:
        return [(t.user + t.system + t.nice + t.irq + t.softirq + getattr(t, "steal", 0.0),
                 t.user + t.system + t.nice + t.irq + t.softirq + getattr(t, "steal", 0.0) + t.idle + t.iowait)
                for t in psutil.cpu_times(percpu=True)]

    def start(self) -> None:
        self._start = self._busy()

    def stop(self) -> list[float]:
        end = self._busy()
        return [round(100 * (b1 - b0) / max(t1 - t0, 1e-9), 1)
                for (b0, t0), (b1, t1) in zip(self._start, end, strict=True)]


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def udp_rcvbuf_errors() -> int:
    """The kernel's UDP receive-buffer drop counter (machine-wide)."""
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


def dev_token(sub: str, role: str, name: str | None = None) -> str:
    """A dev JWT like POST /api/v1/dev/token would issue, minted here to keep setup off the server's clock."""
    import jwt

    from signaling.auth import DEV_ISSUER, LOCAL_AUDIENCE

    now = int(time.time())
    return jwt.encode({"iss": DEV_ISSUER, "sub": sub, "role": role, "tenant": TENANT, "name": name or sub,
                       "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + 6 * 3600}, SECRET, algorithm="HS256")


class LoadProcess:
    """A load generator in its own Python process (`python -m module`), driven by one JSON command per line
    on stdin and answering one JSON line per command on stdout."""

    def __init__(self, module: str, cpu_list: list[int], args: list[str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module, *(args or [])], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        pin(self.pid, cpu_list)

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator {self.pid} exited ({self.proc.poll()})")
        return json.loads(line)

    def call(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call(cmd="quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def serve_commands(handlers: dict[str, Any]) -> None:
    """The load-generator side of `LoadProcess`: run an asyncio loop answering commands from stdin."""
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                break
            command = json.loads(line)
            name = command.pop("cmd")
            if name == "quit":
                if "close" in handlers:
                    await handlers["close"]()
                print(json.dumps({"ok": True}), flush=True)
                break
            try:
                answer = await handlers[name](**command)
            except Exception as exc:  # report to the driver rather than die silently
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)

    asyncio.run(main())


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def r4(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def write_result(name: str, result: dict[str, Any]) -> None:
    """Write the JSON next to the plot and print it as the last line of output."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)


def plot_path(name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}.png"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
