"""The one benchmark harness: server processes (a private redis-server, `nettlege serve`), CPU plans and pinning,
CPU meters, dev tokens, percentiles and medians, machine facts, load generators in their own processes, result
records (JSON lines under load_tests/results/, with machine, commit and command line, so every figure in the
README can be traced to a run), and what the scenarios share: one sampled run recorded with the server's CPU and
where everything ran (`run_scenario`), and the step-by-step video ramp (`ramp`) of video_ramp and scale_out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

# Where result lines and plots go: load_tests/results/ (committed), or NETTLEGE_BENCH_RESULTS for a run that is not a
# measurement (a smoke run at the smallest settings, a run on a busy machine).
RESULTS = Path(os.environ.get("NETTLEGE_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
TENANT, SERVICE = "bench", "nettlege"
SECRET = "bench-secret-" + "x" * 32  # what `nettlege_server` gives the server, so the harness can mint tokens
# Keys every server process of one run shares (several processes on one Redis must read each other's sealed data).
CHAT_MASTER_KEY = base64.b64encode(b"nettlege-bench-chat-master-key!!").decode()
AUDIT_KEY = "bench-audit-key-" + "y" * 32
ORIGIN = "http://load.test"
TENANTS_TOML = f"""
[[tenants]]
id = "{TENANT}"
name = "Benchmark kommune"
[[tenants.services]]
id = "{SERVICE}"
name = "Kommunal nettlege"
opening_hours = {{ default = "24/7" }}
"""


# --- ports and processes -------------------------------------------------------------------------------

def free_port(consecutive: int = 1) -> int:
    """A free loopback port (the first of `consecutive` free ones, for `serve --workers N`)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for i in range(1, consecutive):
                with socket.socket() as s2:
                    s2.bind(("127.0.0.1", port + i))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no {consecutive} consecutive free ports")


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def redis_server(appendonly: bool = False) -> Iterator[str]:
    """A private redis-server on a free loopback port; yields its URL."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="nettlege-redis-")
    args = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--dir", workdir, "--appendonly", "yes" if appendonly else "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


class Server:
    """A running `nettlege serve`: base URLs (one per worker), the process, and the pids that do the work."""

    def __init__(self, bases: list[str], proc: subprocess.Popen[bytes], pids: list[int]) -> None:
        self.bases, self.proc, self.pids = bases, proc, pids

    @property
    def base(self) -> str:
        return self.bases[0]

    def __iter__(self) -> Iterator[Any]:
        """`with nettlege_server(url) as (base, proc):` for one process."""
        return iter((self.base, self.proc))


@contextlib.contextmanager
def nettlege_server(redis_url: str | None, extra_toml: str = "", env: dict[str, str] | None = None,
                    workers: int = 1, prefix: list[str] | None = None) -> Iterator[Server]:
    """`nettlege serve` (with `--workers N` when N > 1) in its own process on free loopback ports; `prefix` is a
    command to start it with (`taskset -c 0`)."""
    port = free_port(workers)
    config = Path(tempfile.mkdtemp(prefix="nettlege-bench-")) / "bench.toml"
    config.write_text(extra_toml + TENANTS_TOML)
    environ = {**os.environ, "NETTLEGE_ENV": "test", "NETTLEGE_SECRET_KEY": SECRET, "NETTLEGE_LOG_LEVEL": "WARNING",
               "NETTLEGE_CHAT_MASTER_KEY": CHAT_MASTER_KEY, "NETTLEGE_AUDIT_KEY": AUDIT_KEY, **(env or {})}
    environ.pop("REDIS_URL", None)
    if redis_url:
        environ["REDIS_URL"] = redis_url
    args = [*(prefix or []), sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
            "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(args, env=environ, stdout=subprocess.DEVNULL)
    try:
        for i in range(workers):
            wait_port(port + i, 30)
        pids = [proc.pid]
        if workers > 1:
            pids = sorted(c.pid for c in psutil.Process(proc.pid).children())
        yield Server([f"http://127.0.0.1:{port + i}" for i in range(workers)], proc, pids)
    finally:
        stop(proc, 15)
        shutil.rmtree(config.parent, ignore_errors=True)


def taskset(cpu_list: list[int]) -> list[str]:
    """A command prefix that starts a process (and so all its threads) on these CPUs."""
    return ["taskset", "-c", ",".join(map(str, cpu_list))]


class Bench:
    """What `pinned_server` started: the server, its Redis, and which CPUs are the server's and the load's."""

    def __init__(self, server: Server, redis_url: str, redis_pid: int | None, server_cpus: list[int],
                 load_cpus: list[int]) -> None:
        self.server, self.redis_url, self.redis_pid = server, redis_url, redis_pid
        self.server_cpus, self.load_cpus = server_cpus, load_cpus
        self.base, self.pid = server.base, server.proc.pid
        self.load_pid: int | None = None


@contextlib.contextmanager
def pinned_server(extra_toml: str = "", env: dict[str, str] | None = None) -> Iterator[Bench]:
    """The usual bench: a private redis-server and one `nettlege serve` (REDIS_URL set) started on the server CPU
    (CPU 0), Redis moved to the load CPUs, where the load generators go too."""
    (server_cpus,), load_cpus = cpu_plan(1)
    with redis_server() as redis_url, \
            nettlege_server(redis_url, extra_toml, env, prefix=taskset(server_cpus)) as server:
        rpid = redis_pid(redis_url)
        pin(rpid, load_cpus)
        yield Bench(server, redis_url, rpid, server_cpus, load_cpus)


def redis_pid(redis_url: str) -> int | None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "redis-server" and port in " ".join(p.info["cmdline"] or []):
            return p.pid
    return None


# --- CPUs ----------------------------------------------------------------------------------------------

def cpus() -> list[int]:
    """This machine's CPUs, the server's first: CPU 0 unless NETTLEGE_BENCH_SERVER_CPU names another."""
    found = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    first = int(os.environ.get("NETTLEGE_BENCH_SERVER_CPU", found[0]))
    return [first, *(c for c in found if c != first)] if first in found else found


def cpu_plan(server_processes: int = 1) -> tuple[list[list[int]], list[int]]:
    """(CPUs for each server process, CPUs for load generators and Redis): each server one CPU to itself and the
    load the rest; with no CPU left over (2 servers on 2 CPUs) the load floats over all of them."""
    all_cpus = cpus()
    if len(all_cpus) > server_processes:
        return [[c] for c in all_cpus[:server_processes]], all_cpus[server_processes:]
    if len(all_cpus) == server_processes:
        return [[c] for c in all_cpus], all_cpus
    return [all_cpus for _ in range(server_processes)], all_cpus


def pin(pid: int | None, cpu_list: list[int]) -> None:
    """Pin every thread of a process (a thread's affinity is its own; threads started later inherit it)."""
    if not pid or not hasattr(os, "sched_setaffinity"):
        return
    with contextlib.suppress(psutil.Error):
        for thread in psutil.Process(pid).threads():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread.id, cpu_list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU of some processes over a window, in % of one core (user + system), and how long they waited for a CPU
    (run-queue time from /proc/PID/task/*/schedstat: other processes held it)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.waited: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    @staticmethod
    def _waited(pid: int) -> float:
        total = 0
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(task.read_text().split()[1])
        return total / 1e9

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._wait0 = {name: self._waited(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        self.seconds = {name: cpu_seconds(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        self.waited = {name: round(100 * (self._waited(pid) - self._wait0[name]) / elapsed, 1)
                       for name, pid in self.pids.items()}
        return {name: round(100 * s / elapsed, 1) for name, s in self.seconds.items()}


class MachineMeter:
    """Busy % of each CPU over a window, everyone's processes included."""

    @staticmethod
    def _busy() -> list[tuple[float, float]]:
        out = []
        for t in psutil.cpu_times(percpu=True):
            busy = t.user + t.system + t.nice + t.irq + t.softirq + getattr(t, "steal", 0.0)
            out.append((busy, busy + t.idle + t.iowait))
        return out

    def start(self) -> None:
        self._start = self._busy()

    def stop(self) -> list[float]:
        return [round(100 * (b1 - b0) / max(t1 - t0, 1e-9), 1)
                for (b0, t0), (b1, t1) in zip(self._start, self._busy(), strict=True)]


def udp_rcvbuf_errors() -> int:
    """The kernel's UDP receive-buffer drop counter (machine-wide)."""
    from media.metrics import udp_receive_errors

    return udp_receive_errors()


# --- figures -------------------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def p4(values: list[float], p: float) -> float | None:
    """The p-th percentile, rounded to 4 decimals."""
    return r4(percentile(values, p))


def median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def r4(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def dev_token(sub: str, role: str, name: str | None = None, tenant: str = TENANT) -> str:
    """A dev JWT like POST /api/v1/dev/token issues, minted here to keep setup off the server's CPU."""
    import jwt

    from signaling.auth import DEV_ISSUER, LOCAL_AUDIENCE

    now = int(time.time())
    return jwt.encode({"iss": DEV_ISSUER, "sub": sub, "role": role, "tenant": tenant, "name": name or sub,
                       "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + 6 * 3600}, SECRET, algorithm="HS256")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- machine and results -------------------------------------------------------------------------------

def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=root)
        # what ran is the working tree: "+dirty" when the product has uncommitted changes
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "media", "signaling", "rooms", "chat"],
                               capture_output=True, text=True, timeout=5, cwd=root)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "cpu_model": _cpu_model(),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def record(name: str, figures: dict[str, Any], started: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one result line to load_tests/results/<name>.jsonl and print it as the last line of output.
    `started` is `machine()` taken before the run (its load average is the one that matters)."""
    line = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
            "command": "python -m load_tests." + name + " " + " ".join(sys.argv[1:]),
            "machine": {**(started or machine()), "loadavg_after": machine()["loadavg_1_5_15"]}, **figures}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / f"{name.split('.')[-1]}.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)
    return line


def plot_path(name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}.png"


def save_plot(fig: Any, axes: Any, name: str, title: str, legend_size: int | None = 8) -> str:
    """Grid (and legend) on every axis, the title, and the PNG in load_tests/results/; returns its path."""
    for ax in axes:
        ax.grid(alpha=0.3)
        if legend_size:
            ax.legend(fontsize=legend_size)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = plot_path(name)
    fig.savefig(path, dpi=90)
    return str(path)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- load generators in their own processes ------------------------------------------------------------

Handlers = dict[str, Callable[..., Awaitable[Any]]]


def _worker_main(conn: Connection, factory: Callable[[], Handlers], cpu_list: list[int]) -> None:
    if cpu_list and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpu_list)

    async def serve() -> None:
        handlers = factory()
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            name = command.pop("cmd")
            try:
                answer = await handlers[name](**command) if name in handlers else None
            except Exception as exc:  # reported to the driver rather than dying silently
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            conn.send(answer)
            if name == "quit":
                return

    asyncio.run(serve())


class Worker:
    """A load generator in its own process (multiprocessing, spawn), pinned to `cpu_list`, answering commands:
    `factory()` (a module-level function) returns {command: async handler}; "quit" ends it (its handler, if
    any, cleans up first)."""

    def __init__(self, factory: Callable[[], Handlers], cpu_list: list[int]) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, factory, cpu_list), daemon=True)
        self.proc.start()
        self.pid = self.proc.pid

    def send(self, cmd: str, **kwargs: Any) -> None:
        self._conn.send({"cmd": cmd, **kwargs})

    def receive(self, timeout: float | None = None) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"load generator {self.pid}: no answer within {timeout} s")
        answer = self._conn.recv()
        if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
            raise RuntimeError(f"load generator {self.pid}: {answer['error']}")
        return answer

    def call(self, cmd: str, timeout: float | None = None, **kwargs: Any) -> Any:
        self.send(cmd, **kwargs)
        return self.receive(timeout)

    def close(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
                self.call("quit", timeout=30)
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


# --- Redis round trips ---------------------------------------------------------------------------------

class RedisTurnCounter:
    """A TCP proxy in front of Redis (in a thread with its own event loop) that counts round trips: a client
    connection's bytes towards Redis after Redis last answered it (or first) start a new one, so a pipeline or
    MULTI/EXEC sent at once is one, and a Lua script is one, however many commands it runs. Slower than a direct
    connection: use it to count, not to time."""

    def __init__(self, redis_url: str) -> None:
        import threading

        rest = redis_url.split("://", 1)[1]
        hostport, _, self._db = rest.partition("/")
        self._host, _, port = hostport.rpartition(":")
        self._port = int(port)
        self.turns = 0
        self._loop = asyncio.new_event_loop()
        self.port = free_port()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self._db or '0'}"

    def _run(self, started: Any) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        started.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        answered = [True]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, towards_redis: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if towards_redis and answered[0]:
                        self.turns += 1
                    answered[0] = not towards_redis
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


def run_sampled(worker: Worker, server_pid: int, other_pids: dict[str, int | None], timeout: float,
                **command: Any) -> tuple[Any, dict[str, float], dict[str, float], list[tuple[float, float]]]:
    """Send `run` to a load generator and sample the server's CPU each second until it answers. Returns (its
    answer, CPU % of the server and `other_pids` over the run, their run-queue wait %, [(seconds since the
    start, server CPU % in that second)])."""
    meter = CpuMeter({"server": server_pid, "load": worker.pid, **other_pids})
    sample = CpuMeter({"server": server_pid})
    meter.start()
    sample.start()
    t0 = time.monotonic()
    series: list[tuple[float, float]] = []
    worker.send("run", **command)
    while True:
        try:
            answer = worker.receive(1.0)
            break
        except TimeoutError as exc:
            if not worker.proc.is_alive() or time.monotonic() - t0 > timeout:
                raise RuntimeError(f"load generator {worker.pid} died or hung (exit {worker.proc.exitcode})") from exc
            series.append((time.monotonic() - t0, sample.stop()["server"]))
            sample.start()
    cpu = meter.stop()
    return answer, cpu, meter.waited, series


def run_once_sampled(factory: Callable[[], Handlers], extra_toml: str = "", **command: Any,
                     ) -> tuple[Any, dict[str, float], dict[str, float], list[tuple[float, float]], Bench]:
    """One load generator's `run` against a `pinned_server`, with `run_sampled`'s figures and the `Bench`."""
    with pinned_server(extra_toml) as bench:
        worker = Worker(factory, bench.load_cpus)
        try:
            res, cpu, waited, series = run_sampled(worker, bench.pid, {"redis": bench.redis_pid}, 600,
                                                   base=bench.base, **command)
        finally:
            worker.close()
    bench.load_pid = worker.pid
    return res, cpu, waited, series, bench


# --- scenarios -----------------------------------------------------------------------------------------

def scenario_parser(doc: str | None) -> argparse.ArgumentParser:
    """A scenario's command line, its module docstring as the help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def where(bench: Bench, load: str, before: dict[str, Any]) -> dict[str, Any]:
    """What ran where in a `pinned_server` run with one load generator doing `load`."""
    return {"server": f"1 nettlege serve process (pid {bench.pid}, REDIS_URL set) on CPUs {bench.server_cpus}",
            "redis": f"private redis-server on CPUs {bench.load_cpus}",
            "load": f"1 load-generator process (pid {bench.load_pid}: {load}) on CPUs {bench.load_cpus}",
            "network": "127.0.0.1", **machine(), "loadavg_before": before["loadavg_1_5_15"]}


def run_scenario(name: str, factory: Callable[[], Handlers],
                 summarise: Callable[[Any, list[tuple[float, float]], Bench], dict[str, Any]], *, load: str,
                 extra_toml: str = "", **command: Any) -> dict[str, Any]:
    """One load generator's `run` (with `command`) against a `pinned_server`; `summarise(answer, server CPU per
    second, bench)` gives the scenario's figures (and its plot); the server's, Redis's and the load's CPU and
    where each ran are added; printed, and recorded as `scenarios.<name>`."""
    before = machine()
    res, cpu, waited, series, bench = run_once_sampled(factory, extra_toml, **command)
    result = {"scenario": name, **summarise(res, series, bench),
              "server_cpu_pct": cpu.get("server"), "server_cpu_pct_peak_1s": max((c for _, c in series), default=None),
              "redis_cpu_pct": cpu.get("redis"), "load_cpu_pct": cpu.get("load"), "runqueue_wait_pct": waited}
    print({k: v for k, v in result.items() if k not in ("statuses", "targets")}, file=sys.stderr)
    return record(f"scenarios.{name}", {**result, "where": where(bench, load, before)}, before)


# --- the video ramp (video_ramp, scale_out) --------------------------------------------------------------
# Consultations added step by step by `media_bench`'s load generators until the picture degrades.

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


@contextlib.contextmanager
def ramp_loads(count: int, cpu_list: list[int]) -> Iterator[tuple[list[Worker], dict[str, Any]]]:
    """`count` of `media_bench`'s load generators, set up (clips encoded); yields them and the clip's facts."""
    from load_tests.media_bench import load_generator

    loads = [Worker(load_generator, cpu_list) for _ in range(count)]
    try:
        for lp in loads:
            lp.send("setup")
        clips = [lp.receive(120) for lp in loads]
        yield loads, clips[0]
    finally:
        for lp in loads:
            lp.close()


def ramp_sfu(args: argparse.Namespace, server_cpus: list[int], load_cpus: list[int],
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The ramp against one `nettlege serve` on `server_cpus`: (its summary, the clip's facts, where)."""
    with pinned_server() as bench, ramp_loads(args.load_processes, load_cpus) as (loads, clip):
        result = ramp("sfu", bench.base, "nettlege", {"nettlege": bench.pid}, {"redis": bench.redis_pid}, loads,
                      load_cpus, args.steps, args.measure_s, args.settle_s, args.gap_s)
    return result, clip, {"server": f"1 nettlege serve process (REDIS_URL set) on CPUs {server_cpus}",
                          "redis": f"private redis-server on CPUs {load_cpus}",
                          "load": f"{args.load_processes} load-generator process(es) on CPUs {load_cpus}"}


def plot_ramps(name: str, runs: list[dict[str, Any]], title: str, per_process: dict[str, Any] | None = None) -> str:
    """Server CPU, first-frame p95 and delivered fps against consultations, one line per ramp; contended steps
    circled; `per_process`: a ramp whose servers' CPU is also drawn one line each."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for run in runs:
        xs = [s["consultations"] for s in run["steps"]]
        axes[0].plot(xs, [s["server_cpu_pct"] for s in run["steps"]], "o-", label=run["label"])
        axes[1].plot(xs, [s["first_frame_p95_s"] for s in run["steps"]], "o-", label=run["label"])
        axes[2].plot(xs, [s["delivered_fps"] for s in run["steps"]], "o-", label=run["label"])
        hot = [s for s in run["steps"] if s.get("contended")]
        for ax, key in zip(axes, ("server_cpu_pct", "first_frame_p95_s", "delivered_fps"), strict=True):
            ax.plot([s["consultations"] for s in hot], [s[key] for s in hot], "o", ms=12, mfc="none", mec="grey",
                    label="contended: waited > 25 % for a CPU" if hot and run is runs[0] else None)
    if per_process is not None:
        for proc in sorted(per_process["steps"][0]["server_cpu_by_process"]):
            axes[0].plot([s["consultations"] for s in per_process["steps"]],
                         [s["server_cpu_by_process"][proc] for s in per_process["steps"]], ".:",
                         label=f"{per_process['label']}: {proc}")
    axes[0].axhline(100, color="grey", ls=":", lw=1)
    axes[0].set(xlabel="concurrent 1:1 consultations", ylabel="server CPU (% of one core)", title="server CPU")
    axes[1].axhline(FIRST_FRAME_P95_MAX_S, color="red", ls="--", lw=1, label="limit")
    axes[1].set(xlabel="concurrent 1:1 consultations", ylabel="seconds", title="join → first frame, p95")
    axes[2].axhline(FPS_MIN_FRACTION * SENT_FPS, color="red", ls="--", lw=1, label="limit")
    axes[2].set(xlabel="concurrent 1:1 consultations", ylabel="fps", title="delivered video fps (30 sent)")
    return save_plot(fig, axes, name, title, 7 if per_process else 8)


def parse_steps(text: str) -> list[int]:
    steps = [int(x) for x in text.split(",") if x]
    if not steps or steps != sorted(set(steps)) or steps[0] < 1 or steps[-1] > 200:
        raise argparse.ArgumentTypeError("increasing integers 1..200")
    return steps


def seconds(text: str, least: float = 0.0) -> float:
    """A command line's duration in seconds, `least`..3600."""
    value = float(text)
    if not least <= value <= 3600:
        raise argparse.ArgumentTypeError(f"seconds {least:g}..3600")
    return value


def ramp_parser(doc: str | None, steps: str) -> argparse.ArgumentParser:
    parser = scenario_parser(doc)
    parser.add_argument("--steps", type=parse_steps, default=parse_steps(steps),
                        help=f"concurrent consultations at each step (default {steps})")
    parser.add_argument("--measure-s", type=lambda text: seconds(text, least=0.5), default=5.0,
                        help="measured seconds per step")
    parser.add_argument("--settle-s", type=seconds, default=1.5, help="seconds after adding, before measuring")
    parser.add_argument("--gap-s", type=seconds, default=0.1, help="seconds between consultation starts")
    return parser
