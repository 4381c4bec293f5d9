"""ICE server configuration: STUN/TURN URLs from config and time-limited TURN credentials.

TURN credentials follow the coturn REST API (draft-uberti-behave-turn-rest):
username = "<expiry unix time>:<user>", credential = base64(HMAC-SHA1(shared secret, username)).
coturn checks them with `--use-auth-secret --static-auth-secret=<secret>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy


def turn_rest_credentials(secret: str, user: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl_s` seconds, per the coturn REST API."""
    expiry = int(time.time() if now is None else now) + int(ttl_s)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def rtc_ice_servers(servers: Sequence[dict[str, Any]]) -> list[RTCIceServer]:
    return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in servers]


def rtc_configuration(servers: Sequence[dict[str, Any]], relay_only: bool = False) -> RTCConfiguration:
    """An RTCConfiguration that never falls back to aiortc's default public STUN server.

    aiortc 1.16 supports `iceTransportPolicy`; with RELAY, aioice gathers only TURN candidates. Note that aioice
    uses one STUN and one TURN server per connection (the first of each kind in the list).
    """
    return RTCConfiguration(
        iceServers=rtc_ice_servers(servers),
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )



def strip_candidates(sdp: str) -> tuple[str, int]:
    """The SDP without its `a=candidate` and `a=end-of-candidates` lines, and how many distinct candidate
    addresses it had. The server is ICE-lite: it learns a client's address from the client's checks and
    never reads its candidates (which could point anywhere, e.g. at an internal network, or be mDNS names)."""
    kept: list[str] = []
    addresses: set[tuple[str, ...]] = set()
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            addresses.add(tuple(fields[2:6]))  # transport, priority, address, port
        elif not line.startswith("a=end-of-candidates"):
            kept.append(line)
    return "".join(kept), len(addresses)
