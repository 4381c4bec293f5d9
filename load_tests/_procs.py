"""Helpers for benchmarks: free ports, a private redis-server, a `nettlege serve` subprocess."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def redis_server(appendonly: bool = False) -> Iterator[str]:
    """A private redis-server on a free loopback port; yields its URL."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="nettlege-redis-")
    args = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--dir", workdir, "--appendonly", "yes" if appendonly else "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


TENANTS_TOML = """
[[tenants]]
id = "bench"
name = "Benchmark kommune"
[[tenants.services]]
id = "nettlege"
name = "Kommunal nettlege"
opening_hours = { default = "24/7" }
"""


@contextlib.contextmanager
def nettlege_server(redis_url: str | None, extra_toml: str = "", env: dict[str, str] | None = None,
                    ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`nettlege serve` in its own process on a free loopback port; yields (base URL, process)."""
    port = free_port()
    config = Path(tempfile.mkdtemp(prefix="nettlege-bench-")) / "bench.toml"
    config.write_text(extra_toml + TENANTS_TOML)
    environ = {**os.environ, "NETTLEGE_ENV": "test", "NETTLEGE_SECRET_KEY": "bench-secret-" + "x" * 32,
               "NETTLEGE_LOG_LEVEL": "WARNING", **(env or {})}
    environ.pop("REDIS_URL", None)
    if redis_url:
        environ["REDIS_URL"] = redis_url
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
                             "--port", str(port)], env=environ, stdout=subprocess.DEVNULL)
    try:
        _wait_port(port, 30)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(config.parent, ignore_errors=True)


def flush(url: str) -> None:
    r = redis.Redis.from_url(url)
    r.flushdb()
    r.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]
