"""Which server process holds a consultation's media.

Each node (one `nettlege serve` process) heartbeats its address and load into Redis. A consultation's
media lives on one node; the assignment is kept in Redis, and a new consultation goes to the
least-loaded live node. A node that stops heartbeating is out: its consultations are reassigned on
the next request for them, and clients reconnect there. These keys describe the deployment, not a
tenant, so they live under their own hash tag; the assignment itself is a tenant key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from .keys import Keys
from .redis_types import scored

NODES = "nl:{nodes}:live"  # sorted set: node id -> last heartbeat
NODE_INFO = "nl:{nodes}:node:"  # hash per node: address, load
ASSIGNMENT_TTL_S = 86400  # a consultation's node is kept this long after it was last (re)assigned
PLACED_MEMO = 10_000  # consultations this process placed itself, remembered to answer `assign` without a read


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    address: str  # base URL clients use for this node, e.g. http://10.0.0.5:8080
    load: float
    heartbeat: float


# KEYS: assignment key   ARGV: the live node ids, least loaded first. The live set is not read here: it is in
# the deployment's slot, the assignment in the tenant's, and a script may only touch one slot (Redis Cluster).
_ASSIGN = """
local current = redis.call('GET', KEYS[1])
if current then
  for i = 1, #ARGV do
    if ARGV[i] == current then return current end
  end
end
if #ARGV == 0 then return false end
redis.call('SET', KEYS[1], ARGV[1], 'EX', """ + str(ASSIGNMENT_TTL_S) + """)
return ARGV[1]
"""


class NodeRegistry:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time,
                 timeout_s: float = 6.0) -> None:
        self._r = redis
        self._clock = clock
        self.timeout_s = timeout_s
        self._assign = redis.register_script(_ASSIGN)
        # The live nodes as last read, for placing consultations: read at most every `_live_ttl_s`, a small part of
        # the timeout (a new consultation is placed on every take-next; the live set changes with heartbeats).
        self._live_ttl_s = min(1.0, timeout_s / 6)
        self._live_seen: tuple[float, list[Node]] | None = None
        # (tenant, consultation id) -> node id, for consultations placed by a script of this process (take-next)
        self._placed: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def heartbeat(self, node_id: str, address: str, load: float) -> None:
        now = self._clock()
        async with self._r.pipeline(transaction=True) as p:
            p.hset(NODE_INFO + node_id, mapping={"address": address, "load": str(load)})
            p.expire(NODE_INFO + node_id, int(self.timeout_s * 10) + 1)
            p.zadd(NODES, {node_id: now})
            await p.execute()

    async def remove(self, node_id: str) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.zrem(NODES, node_id)
            p.delete(NODE_INFO + node_id)
            await p.execute()

    async def live(self) -> list[Node]:
        cutoff = self._clock() - self.timeout_s
        rows = scored(await self._r.zrangebyscore(NODES, cutoff, "+inf", withscores=True))
        async with self._r.pipeline(transaction=False) as p:
            for node_id, _ in rows:
                p.hgetall(NODE_INFO + node_id)
            infos = await p.execute()
        return [Node(node_id, info["address"], float(info.get("load", 0)), seen)
                for (node_id, seen), info in zip(rows, infos, strict=True) if info]

    async def recent_live(self) -> list[Node]:
        """`live()`, as read at most `_live_ttl_s` ago."""
        now = self._clock()
        if self._live_seen is None or not 0 <= now - self._live_seen[0] < self._live_ttl_s:
            self._live_seen = (now, await self.live())
        return self._live_seen[1]

    async def choose(self) -> Node | None:
        """The least-loaded live node, for a new consultation whose creating script records it (`placed`)."""
        nodes = await self.recent_live()
        return min(nodes, key=lambda n: (n.load, n.id)) if nodes else None

    def placed(self, tenant: str, cid: str, node_id: str) -> None:
        """A script of this process put the consultation on `node_id` (see `assignment`): `assign` answers from
        memory while that node is live, as the assignment script would."""
        self._placed[(tenant, cid)] = node_id
        while len(self._placed) > PLACED_MEMO:
            self._placed.popitem(last=False)

    async def assign(self, tenant: str, cid: str) -> Node | None:
        """The live node holding this consultation's media, choosing the least-loaded one if needed."""
        nodes = await self.recent_live()
        if not nodes:
            return None
        placed = self._placed.get((tenant, cid))
        node = next((n for n in nodes if n.id == placed), None) if placed else None
        if node is not None:
            return node
        ranked = sorted(nodes, key=lambda n: (n.load, n.id))
        chosen = await self._assign(keys=[Keys(tenant).consultation_node(cid)], args=[n.id for n in ranked])
        return next((n for n in nodes if n.id == chosen), None)
