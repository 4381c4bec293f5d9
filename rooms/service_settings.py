"""Service settings an admin changes at runtime: opening hours and closures (public holidays).

The config file gives each service's defaults; a setting stored here (one JSON value per service) replaces
the service's opening hours until it is cleared. Every process reads it from Redis, so a change is seen by
all nodes at once; the route that changes it records the change in the audit trail.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from pydantic import ValidationError

from .keys import Keys
from .redis_types import optional_texts, text_or_none
from .tenants import OpeningHours, Service, Tenant


class SettingsStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def opening_hours(self, tenant: str, service: str) -> OpeningHours | None:
        """The runtime opening hours, or None when the config file's apply."""
        return _parse(text_or_none(await self._r.get(Keys(tenant).service_settings(service))))

    async def set_opening_hours(self, tenant: str, service: str, hours: OpeningHours) -> None:
        await self._r.set(Keys(tenant).service_settings(service), hours.model_dump_json())

    async def clear(self, tenant: str, service: str) -> bool:
        return bool(await self._r.delete(Keys(tenant).service_settings(service)))

    async def effective(self, tenant: Tenant) -> list[Service]:
        """The tenant's services with runtime settings applied (one round trip)."""
        if not tenant.services:
            return []
        raw = optional_texts(await self._r.mget([Keys(tenant.id).service_settings(s.id) for s in tenant.services]))
        out = []
        for s, value in zip(tenant.services, raw, strict=True):
            hours = _parse(value)
            out.append(s.model_copy(update={"opening_hours": hours}) if hours else s)
        return out

    async def service(self, tenant: Tenant, service_id: str) -> Service | None:
        return next((s for s in await self.effective(tenant) if s.id == service_id), None)


def _parse(value: str | None) -> OpeningHours | None:
    if not value:
        return None
    try:
        return OpeningHours.model_validate_json(value)
    except ValidationError:  # written by an older version: fall back to the config file
        return None
