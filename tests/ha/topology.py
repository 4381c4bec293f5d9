"""Real Redis topologies on loopback free ports: primary + replica + 3 Sentinels, and a 3-primary Cluster.

Used by the tests in tests/ha and by load_tests/chat_ack_durability.py. Every process is a Debian
`redis-server` (a Sentinel is `redis-server <conf> --sentinel`); each stop is waited for.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

MASTER_NAME = "nettlege"


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server is not installed (make system-deps)")
    return path


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port below the ephemeral range; with `cluster_bus` also port + 10000 is free."""
    for _ in range(200):
        port = random.randint(20000, 30000)
        if _port_free(port) and (not cluster_bus or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port")


def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = condition()
            if result:
                return result
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def kill(self) -> None:
        """kill -9: no shutdown, no last write to the replicas."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(*args: str, port: int | None = None, config: str | None = None, root: Path) -> Server:
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"r{port}-", dir=root))
    argv = [redis_server_path()]
    if config is not None:
        conf = workdir / "redis.conf"
        conf.write_text(config)
        argv.append(str(conf))
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "", "--appendonly", "no",
             *args]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(port, proc, workdir)
    try:
        wait_until(lambda: server.client().ping(), 15, f"redis-server on {port}")
    except TimeoutError:
        server.stop()
        raise
    return server


@dataclass
class SentinelSet:
    """A primary, `replicas` replicas and three Sentinels (quorum 2) watching them as `nettlege`."""

    primary: Server
    replicas: list[Server]
    sentinels: list[Server]
    down_after_ms: int
    killed: list[Server] = field(default_factory=list)

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def env(self) -> dict[str, str]:
        return {"REDIS_SENTINELS": self.sentinel_addresses, "REDIS_SENTINEL_MASTER": MASTER_NAME}

    def master_port(self) -> int | None:
        """The primary's port as the Sentinels name it (the first one that answers)."""
        for s in self.sentinels:
            if s.proc.poll() is not None:
                continue
            with contextlib.suppress(redis.RedisError, OSError):
                addr = s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                if addr:
                    return int(addr[1])
        return None

    def kill_primary(self) -> Server:
        """kill -9 the current primary; returns it. The new one is found by `wait_failover`."""
        port = self.master_port()
        victim = next(s for s in [self.primary, *self.replicas] if s.port == port)
        victim.kill()
        self.killed.append(victim)
        return victim

    def wait_failover(self, old_port: int, timeout_s: float = 30) -> Server:
        def promoted() -> Server | None:
            port = self.master_port()
            if port is None or port == old_port:
                return None
            server = next(s for s in [self.primary, *self.replicas] if s.port == port)
            return server if server.client().execute_command("ROLE")[0] == "master" else None
        return wait_until(promoted, timeout_s, "a Sentinel failover")

    def wait_replicas_synced(self, timeout_s: float = 20) -> None:
        port = self.master_port()
        primary = next(s for s in [self.primary, *self.replicas] if s.port == port)
        live = [s for s in [self.primary, *self.replicas] if s.proc.poll() is None and s is not primary]
        wait_until(lambda: len(primary.client().execute_command("ROLE")[2]) >= len(live), timeout_s,
                   "replicas connected")

    def stop(self) -> None:
        for s in [*self.sentinels, *self.replicas, self.primary]:
            s.stop()


def _sentinel_conf(master_port: int, down_after_ms: int) -> str:
    return (f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n")


@contextlib.contextmanager
def sentinel_set(replicas: int = 1, down_after_ms: int = 1000) -> Iterator[SentinelSet]:
    root = Path(tempfile.mkdtemp(prefix="nettlege-sentinel-"))
    started: list[Server] = []
    try:
        fast_sync = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
        primary = start_server(*fast_sync, root=root)
        started.append(primary)
        reps = []
        for _ in range(replicas):
            reps.append(start_server(*fast_sync, "--replicaof", "127.0.0.1", str(primary.port), root=root))
            started.append(reps[-1])
        sentinels = []
        for _ in range(3):
            sentinels.append(start_server("--sentinel", config=_sentinel_conf(primary.port, down_after_ms), root=root))
            started.append(sentinels[-1])
        topo = SentinelSet(primary, reps, sentinels, down_after_ms)
        if replicas:
            topo.wait_replicas_synced()
            # Every Sentinel knows every replica (else a failover has nowhere to go) and the other Sentinels.
            def discovered(s: Server) -> bool:
                info = s.client().sentinel_master(MASTER_NAME)
                return int(info["num-slaves"]) >= replicas and int(info["num-other-sentinels"]) >= 2
            wait_until(lambda: all(discovered(s) for s in sentinels), 30,
                       "Sentinels to discover the replicas and each other", 0.2)
        yield topo
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Cluster:
    nodes: list[Server]

    @property
    def url(self) -> str:
        """The form the test fixtures and REDIS_URL understand for a cluster (rooms.store.RedisSettings)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def node_url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"


@contextlib.contextmanager
def redis_cluster(primaries: int = 3) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="nettlege-cluster-"))
    nodes: list[Server] = []
    try:
        for _ in range(primaries):
            port = free_port(cluster_bus=True)
            nodes.append(start_server("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                                      "--cluster-node-timeout", "5000", port=port, root=root))
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        wait_until(lambda: all("cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO")
                               for n in nodes), 30, "cluster_state:ok on every node", 0.1)
        yield Cluster(nodes)
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(root, ignore_errors=True)
