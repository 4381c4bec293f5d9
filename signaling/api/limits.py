"""Per-subject write limits shared by the REST modules (counted in Redis, so across all nodes)."""

from aiohttp import web

from rooms.models import Principal

from ..appkeys import CONFIG, STORE


async def write_allowed(request: web.Request, principal: Principal, bucket: str = "write") -> None:
    limit = request.app[CONFIG].limits.writes_per_minute
    await request.app[STORE].rate.hit(principal.tenant, principal.subject, bucket, limit=limit, window_s=60)
