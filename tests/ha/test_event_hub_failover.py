"""The process's one event subscription through a Sentinel failover: redis-py reconnects and resubscribes it
inside its retry, so every listener is told to resync (events in the gap are lost) and later events arrive."""

from __future__ import annotations

import asyncio

from rooms.events import RESYNC, EventBus, EventHub, TicketCalled
from rooms.store import RedisSettings, connect

from .conftest import in_thread
from .topology import MASTER_NAME, SentinelSet


async def _until(predicate, within_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not predicate():
        assert loop.time() < deadline, f"no {what} within {within_s} s"
        await asyncio.sleep(0.05)


async def test_listeners_resync_after_a_failover_and_hear_events_again(sentinels: SentinelSet):
    settings = RedisSettings(sentinels=tuple(("127.0.0.1", s.port) for s in sentinels.sentinels),
                             sentinel_master=MASTER_NAME, retry_s=15)
    redis = connect(settings)
    hub, bus = EventHub(redis), EventBus(redis)
    got: list[object] = []
    hub.add("oslo", "ticket:t1", got.append)
    await hub.start()
    try:
        assert hub.subscribed.is_set()
        await bus.publish("oslo", TicketCalled("t1", "c1"))
        await _until(lambda: TicketCalled("t1", "c1") in got, 10, "event before the kill")
        victim = await in_thread(sentinels.kill_primary)
        await in_thread(sentinels.wait_failover, victim.port)
        await _until(lambda: RESYNC in got, 30, "resync after the failover")
        n = 2
        while TicketCalled("t1", f"c{n}") not in got:  # publish until the new subscription hears one
            await bus.publish("oslo", TicketCalled("t1", f"c{n}"))
            await asyncio.sleep(0.1)
            if TicketCalled("t1", f"c{n}") not in got:
                n += 1
            assert n < 100, "no event after the failover"
        assert settings.health.failovers >= 1 and settings.health.reconnects >= 1
    finally:
        await hub.stop()
        await redis.aclose()
