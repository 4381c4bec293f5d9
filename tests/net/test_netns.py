"""The namespace helper itself: a real link, shaping that can change, an address that moves, no leftovers."""

from __future__ import annotations

import socket
import subprocess

from tests import netns

SEND = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.sendto(b'hei', (sys.argv[1], int(sys.argv[2])))")


def _received_from(ns: netns.Namespace, sock: socket.socket) -> str:
    ns.exec("python3", "-c", SEND, ns.host_ip, str(sock.getsockname()[1]))
    data, (address, _) = sock.recvfrom(100)
    assert data == b"hei"
    return address


def test_a_namespace_reaches_the_root_side_changes_address_and_leaves_nothing_behind() -> None:
    with netns.namespace() as ns, netns.namespace() as other, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert ns.name != other.name and ns.subnet != other.subnet
        assert ns.subnet.subnet_of(netns.NETWORK)  # TEST-NET-2 only
        s.settimeout(5)
        s.bind((ns.host_ip, 0))
        assert _received_from(ns, s) == ns.client_ip
        old = ns.client_ip
        new = ns.readdress()
        assert new != old and _received_from(ns, s) == new
        assert old not in ns.exec("ip", "-4", "-o", "addr").stdout
        name, host_if = ns.name, ns.host_if
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in namespaces.split()
    assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0


def test_shaping_is_set_changed_and_removed_on_both_sides(namespace: netns.Namespace) -> None:
    namespace.shape_down(500)
    assert "rate 500Kbit" in namespace.qdisc_stats(down=True)
    namespace.shape_down(120)
    assert "rate 120Kbit" in namespace.qdisc_stats(down=True)
    namespace.shape_up(300)
    assert "rate 300Kbit" in namespace.qdisc_stats(down=False)
    namespace.unshape()
    assert "tbf" not in namespace.qdisc_stats(down=True) + namespace.qdisc_stats(down=False)
