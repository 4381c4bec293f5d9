"""What "acked means replicated" costs, and how long a Redis failover interrupts the chat.

    python -m load_tests.chat_ack_durability --consultations 200 --duration 15 --failovers 5

1. Ack latency, side by side in one run: a primary with one replica (redis-server, loopback) and two
   `nettlege serve` processes on it, one with REDIS_MIN_REPLICAS_ACK=0 and one with =1 (WAIT 1). The same chat
   load (load_tests.chat_bench's load generator: N consultations, two Socket.IO clients each, one message per
   `--interval` per consultation) runs against each in turn; send -> ack p50/p99 for both.
2. The failover gap, `--failovers` times: primary + two replicas + three Sentinels (down-after 1 s), one
   `nettlege serve` with REDIS_SENTINELS and REDIS_MIN_REPLICAS_ACK=1, one chat client sending a message every
   50 ms and resending unacked ones with the same client_id. The primary is killed with SIGKILL; the gap is
   kill -> the first ack of a message sent after the kill. Median of the runs.
Appends one JSON line to load_tests/results/chat_ack_durability.jsonl; times in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from . import harness
from .chat_bench import MASTER_KEY, ORIGIN, create_consultations, load_generator

ENV = {"NETTLEGE_ALLOWED_ORIGINS": ORIGIN, "NETTLEGE_CHAT_MASTER_KEY": MASTER_KEY, "REDIS_WAIT_TIMEOUT_MS": "2000"}


def ack_latency(base: str, redis_url: str, consultations: int, duration: float, interval: float) -> dict[str, Any]:
    convs = asyncio.run(create_consultations(redis_url, consultations))
    load = harness.Worker(load_generator, harness.cpus())
    try:
        ready = load.call("setup", timeout=600, base=base, consultations=convs, connect_concurrency=100)
        result = load.call("go", timeout=duration + 600, duration=duration, interval=interval)
    finally:
        load.close()
    return {"consultations": consultations, "connected": ready["ready"], "acked": result["acked"],
            "errors": result["errors"], "ack_p50_s": harness.p4(result["ack"], 50),
            "ack_p99_s": harness.p4(result["ack"], 99), "lost_after_resync": result["missing_after_resync"]}


def side_by_side(consultations: int, duration: float, interval: float) -> dict[str, Any]:
    from tests.ha.topology import sentinel_set

    with sentinel_set(replicas=1) as topo:
        url = f"redis://127.0.0.1:{topo.primary.port}/0"
        out = {}
        for n in (0, 1):
            with harness.nettlege_server(url, env={**ENV, "REDIS_MIN_REPLICAS_ACK": str(n)}) as server:
                out[f"min_replicas_ack_{n}"] = ack_latency(server.base, url, consultations, duration, interval)
    return out


async def _failover_gap(base: str, topo: Any) -> dict[str, Any]:
    import aiohttp

    from .clients import ChatClient

    convs = await create_consultations_sentinel(topo)
    async with aiohttp.ClientSession() as http:
        client = ChatClient(http, base, convs["citizen"], "citizen", {}, lambda *_: None)
        await client.join(convs["cid"], ORIGIN)
        loop = asyncio.get_running_loop()
        killed_at: float | None = None
        first_after: float | None = None
        seq = 0
        while first_after is None:
            seq += 1
            sent_at = loop.time()
            while True:  # resend with the same client_id until acked
                try:
                    ack, _ = await client.send(convs["cid"], f"c{seq}", f"melding {seq}", timeout=10)
                except Exception:
                    ack = {"ok": False}
                if ack.get("ok"):
                    break
                await asyncio.sleep(0.05)
            if killed_at is not None and sent_at >= killed_at:
                first_after = loop.time()
            elif seq == 20:
                await asyncio.to_thread(topo.kill_primary)
                killed_at = loop.time()
            await asyncio.sleep(0.05)
        await client.close()
    return {"gap_s": round(first_after - killed_at, 3), "messages": seq}


async def create_consultations_sentinel(topo: Any) -> dict[str, str]:
    from rooms.models import ParticipantState, Role
    from rooms.store import RedisSettings, Store

    store = Store.open(RedisSettings(sentinels=tuple(("127.0.0.1", s.port) for s in topo.sentinels),
                                     sentinel_master="nettlege"))
    try:
        c = await store.consultations.create(harness.TENANT, harness.SERVICE, creator="dr", creator_role=Role.CLINICIAN,
                                             creator_name="Dr")
        await store.consultations.add_participant(harness.TENANT, c.id, subject="cit", role=Role.CITIZEN,
                                                  display_name="Innbygger", state=ParticipantState.ADMITTED)
    finally:
        await store.close()
    return {"cid": c.id, "citizen": harness.dev_token("cit", "citizen", "Innbygger")}


def failover_gaps(runs: int) -> list[dict[str, Any]]:
    from tests.ha.topology import sentinel_set

    out = []
    for _ in range(runs):
        with sentinel_set(replicas=2, down_after_ms=1000) as topo:
            env = {**ENV, **topo.env(), "REDIS_MIN_REPLICAS_ACK": "1"}
            with harness.nettlege_server(None, env=env) as server:
                out.append(asyncio.run(_failover_gap(server.base, topo)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--failovers", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.consultations <= 5000 or not 1 <= args.failovers <= 20:
        parser.error("--consultations 1..5000, --failovers 1..20")
    os.environ.pop("REDIS_URL", None)
    started = harness.machine()
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"ack_latency": side_by_side(args.consultations, args.duration, args.interval)}
    gaps = failover_gaps(args.failovers)
    figures["failover_gap_runs_s"] = [g["gap_s"] for g in gaps]
    figures["failover_gap_median_s"] = harness.median([g["gap_s"] for g in gaps])
    figures["where"] = {"server": "nettlege serve on 127.0.0.1 (not pinned)", "redis": "redis-server 7, loopback",
                        "sentinel": "3 Sentinels, down-after 1 s, quorum 2", "wall_s": round(time.perf_counter() - t0)}
    harness.record("chat_ack_durability", figures, started)


if __name__ == "__main__":
    main()
