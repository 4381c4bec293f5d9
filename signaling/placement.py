"""This process as a node: heartbeat its address and load, and find the node holding a consultation.

With one process every consultation is local. With several processes (or machines) sharing Redis,
`signal_url` handed to clients points at the owning node, and a signaling WebSocket that reaches the
wrong node is told where to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from rooms.nodes import NodeRegistry

from .appkeys import CONFIG, STORE

log = logging.getLogger(__name__)


@dataclass
class ThisNode:
    id: str
    address: str  # base URL of this process as clients reach it
    registry: NodeRegistry
    load: Callable[[], float]

    async def signal_url(self, tenant: str, cid: str) -> str:
        """Where clients open the signaling WebSocket for this consultation."""
        path = f"/api/v1/consultations/{cid}/signal"
        owner = await self.registry.assign(tenant, cid)
        if owner is None or owner.id == self.id:
            return path
        return owner.address.rstrip("/") + path

    async def owner_elsewhere(self, tenant: str, cid: str) -> str | None:
        """The other node's signal URL if the consultation lives elsewhere, else None (it is ours)."""
        url = await self.signal_url(tenant, cid)
        return None if url.startswith("/") else url


NODE = web.AppKey("node", ThisNode)


def node_address(app: web.Application) -> str:
    config = app[CONFIG]
    return config.node_url or f"http://{config.host}:{config.port}"


def setup_placement(app: web.Application, load: Callable[[], float]) -> None:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        registry = NodeRegistry(app[STORE].redis, timeout_s=config.node_timeout_s)
        interval = config.node_timeout_s / 3
        node = ThisNode(id=secrets.token_hex(6), address=node_address(app), registry=registry, load=load)
        app[NODE] = node
        app[STORE].nodes = registry  # take-next places a new consultation in its own script

        async def beat() -> None:
            while True:
                try:
                    await registry.heartbeat(node.id, node.address, node.load())
                except Exception:  # Redis away for a moment: the next beat tries again; /readyz reports it
                    log.warning("node heartbeat failed")
                await asyncio.sleep(interval)

        task = asyncio.create_task(beat(), name="node-heartbeat")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        app[STORE].nodes = None
        with contextlib.suppress(Exception):
            await registry.remove(node.id)

    app.cleanup_ctx.append(ctx)
