"""Network namespaces for tests of media on real (shaped, changing) links.

    with netns.namespace() as ns:                      # or the `netns` fixture in tests/net/conftest.py
        ns.host_ip, ns.client_ip                       # 198.51.100.x (TEST-NET-2), root side and inside
        ns.shape_down(500)                             # tbf on the root side: what the client receives
        ns.shape_up(500)                               # tbf inside: what the client sends
        ns.unshape()
        proc = ns.spawn("tests.net.client", "--url", ...)   # .venv python inside the namespace
        ns.readdress()                                 # the client's address changes (Wi-Fi -> 4G)

Each namespace gets one veth pair and its own /29 of 198.51.100.0/24 (32 slots): .1 on the root side,
.2 inside, .3-.6 for `readdress`. A slot is claimed by creating the namespace `nettlege-<slot>` (atomic: it
fails if it exists), so parallel tests and test processes never collide; a slot left behind by a killed run
is reclaimed when the process that made it is gone. This kernel has `tbf` and `htb` but no `netem`: loss and
delay belong in the client's receive path. Python 3.11 has no `os.setns`, so code runs inside the namespace
as a subprocess (`ip netns exec`).

Needs root (CAP_NET_ADMIN). There is no skip: if a namespace cannot be made, `NetnsError` says why and the
test fails.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NETWORK = ipaddress.ip_network("198.51.100.0/24")
SLOT_PREFIX = 29
SLOTS = 2 ** (SLOT_PREFIX - NETWORK.prefixlen)
PREFIX = "nettlege-"
OWNERS = Path("/run/nettlege-netns")  # <slot>.pid: which process made the namespace
REPO = Path(__file__).resolve().parent.parent


class NetnsError(RuntimeError):
    """A namespace could not be made or changed; the message has the command and its error."""


def run(*argv: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsError(f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()}"
                         + ("" if os.geteuid() == 0 else " — network namespace tests need root"))
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Namespace:
    slot: int
    name: str
    host_if: str
    client_if: str
    host_ip: str
    client_ip: str
    _spare: list[str] = field(default_factory=list)
    _processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return list(NETWORK.subnets(new_prefix=SLOT_PREFIX))[self.slot]  # type: ignore[return-value]

    # --- shaping --------------------------------------------------------------------------------------

    def shape_down(self, rate_kbit: float, burst_bytes: int | None = None, latency_ms: int = 100) -> None:
        """Limit what reaches the client (egress of the root side) to `rate_kbit`; again to change it."""
        self._tbf(self.host_if, None, rate_kbit, burst_bytes, latency_ms)

    def shape_up(self, rate_kbit: float, burst_bytes: int | None = None, latency_ms: int = 100) -> None:
        """Limit what the client sends (egress inside the namespace)."""
        self._tbf(self.client_if, self.name, rate_kbit, burst_bytes, latency_ms)

    def unshape(self) -> None:
        for device, namespace in ((self.host_if, None), (self.client_if, self.name)):
            run("tc", "qdisc", "del", "dev", device, "root", namespace=namespace, check=False)

    def _tbf(self, device: str, namespace: str | None, rate_kbit: float, burst_bytes: int | None,
             latency_ms: int) -> None:
        # The bucket must hold at least one MTU-sized packet; ~50 ms of the rate keeps bursts short.
        burst = burst_bytes or max(3000, int(rate_kbit * 1000 / 8 * 0.05))
        run("tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate", f"{rate_kbit}kbit",
            "burst", str(burst), "latency", f"{latency_ms}ms", namespace=namespace)

    def qdisc_stats(self, down: bool = True) -> str:
        device, namespace = (self.host_if, None) if down else (self.client_if, self.name)
        return run("tc", "-s", "qdisc", "show", "dev", device, namespace=namespace).stdout

    # --- moving the client ----------------------------------------------------------------------------

    def readdress(self, new_ip: str | None = None) -> str:
        """Give the client a new address and remove the old one, as a phone moving from Wi-Fi to 4G: sockets
        bound to the old address stop working. Returns the new address."""
        new_ip = new_ip or self._spare.pop(0)
        prefix = self.subnet.prefixlen
        # The link goes down meanwhile, as the Wi-Fi interface goes when a phone moves to 4G. Without that the
        # kernel went on delivering packets sent to the old address for ~1.8 s (sockets keep their cached input
        # route until it is invalidated), so media went on arriving after the "change".
        run("ip", "link", "set", self.client_if, "down", namespace=self.name)
        # Old first: deleting a primary address also deletes the secondaries of its subnet.
        run("ip", "addr", "del", f"{self.client_ip}/{prefix}", "dev", self.client_if, namespace=self.name)
        run("ip", "addr", "add", f"{new_ip}/{prefix}", "dev", self.client_if, namespace=self.name)
        run("ip", "link", "set", self.client_if, "up", namespace=self.name)
        self.client_ip = new_ip
        return new_ip

    def set_link(self, up: bool) -> None:
        """Take the link down (no network at all) or bring it back."""
        run("ip", "link", "set", self.client_if, "up" if up else "down", namespace=self.name)

    # --- running code inside --------------------------------------------------------------------------

    def spawn(self, module: str, *args: str, stdin: bool = True) -> subprocess.Popen[str]:
        """`python -m module args...` inside the namespace with the repository on the path; stopped at
        teardown. stdout is a pipe (line-buffered JSON from tests.net.client), stderr inherits."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-m", module, *args], cwd=REPO, env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self._processes.append(process)
        return process

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(*argv, namespace=self.name, check=check)

    # --- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        _remove(self.slot)


def _names(slot: int) -> tuple[str, str, str]:
    return f"{PREFIX}{slot}", f"nlg{slot}h", f"nlg{slot}c"


def _remove(slot: int) -> None:
    name, host_if, _ = _names(slot)
    run("ip", "link", "del", host_if, check=False)  # deletes the peer inside too
    run("ip", "netns", "del", name, check=False)
    with contextlib.suppress(FileNotFoundError):
        (OWNERS / f"{slot}.pid").unlink()


def _claim_slot() -> int:
    OWNERS.mkdir(parents=True, exist_ok=True)
    errors = []
    for slot in range(SLOTS):
        name = _names(slot)[0]
        result = run("ip", "netns", "add", name, check=False)
        if result.returncode != 0:
            errors.append(result.stderr.strip())
            owner = OWNERS / f"{slot}.pid"
            try:
                pid = int(owner.read_text())
            except (FileNotFoundError, ValueError):
                continue  # being made right now, or not ours
            if _pid_alive(pid):
                continue
            _remove(slot)  # left behind by a killed run
            if run("ip", "netns", "add", name, check=False).returncode != 0:
                continue
        (OWNERS / f"{slot}.pid").write_text(str(os.getpid()))
        return slot
    raise NetnsError(f"no free network namespace slot of {SLOTS}; last error: {errors[-1] if errors else '-'}"
                     + ("" if os.geteuid() == 0 else " — network namespace tests need root"))


def create() -> Namespace:
    """A namespace with a veth pair to the root namespace, addressed and up. Call `close()` (or use
    `namespace()`)."""
    slot = _claim_slot()
    name, host_if, client_if = _names(slot)
    hosts = [str(h) for h in list(NETWORK.subnets(new_prefix=SLOT_PREFIX))[slot].hosts()]
    try:
        run("ip", "link", "del", host_if, check=False)  # a leftover of a run killed before it registered
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", client_if)
        run("ip", "link", "set", client_if, "netns", name)
        run("ip", "addr", "add", f"{hosts[0]}/{SLOT_PREFIX}", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "addr", "add", f"{hosts[1]}/{SLOT_PREFIX}", "dev", client_if, namespace=name)
        run("ip", "link", "set", client_if, "up", namespace=name)
        run("ip", "link", "set", "lo", "up", namespace=name)
    except BaseException:
        _remove(slot)
        raise
    return Namespace(slot, name, host_if, client_if, hosts[0], hosts[1], _spare=hosts[2:])


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    ns = create()
    try:
        yield ns
    finally:
        ns.close()
