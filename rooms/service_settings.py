"""Service settings an admin changes at runtime: opening hours and closures (public holidays).

The config file gives each service's defaults; a setting stored here (one JSON value per service) replaces
the service's opening hours until it is cleared. Every process keeps what it read (every join asks whether
the service is open) and drops it when told: a change publishes `SettingsChanged`, which each process's event
hub hands to `follow`'s listener, and a resync drops everything. The process that changes it drops its copy at
once; another process sees the change as soon as the event arrives (and after CACHE_TTL_S at the latest, should
it never). The route that changes it records the change in the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from pydantic import ValidationError

from .events import EventBus, EventHub, Resync, SettingsChanged, settings_topic
from .keys import Keys
from .redis_types import optional_texts, text_or_none
from .tenants import OpeningHours, Service, Tenant

CACHE_TTL_S = 60.0  # a bound only: the event drops a changed value at once


class SettingsStore:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self._r = redis
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, OpeningHours | None]] = {}  # read at, the runtime hours
        self._generation = 0  # counts drops

    def follow(self, hub: EventHub, tenants: Iterable[Tenant]) -> Callable[[], None]:
        """Drop cached settings when the hub says they changed (or may have: a resync). Returns the unsubscribe."""
        removers = []
        for tenant in tenants:
            for service in tenant.services:
                def drop(event: object, key: tuple[str, str] = (tenant.id, service.id)) -> None:
                    self._drop(None if isinstance(event, Resync) else key)
                removers.append(hub.add(tenant.id, settings_topic(service.id), drop))

        def remove() -> None:
            for r in removers:
                r()
        return remove

    async def _changed(self, tenant: str, service: str, value: str | None) -> int:
        """Store (or clear, with None), then announce; drop this process's copy at once."""
        key = Keys(tenant).service_settings(service)
        changed = int(await self._r.delete(key)) if value is None else int(bool(await self._r.set(key, value)))
        self._drop((tenant, service))
        await EventBus(self._r).publish(tenant, SettingsChanged(service))
        return changed

    def _drop(self, key: tuple[str, str] | None) -> None:
        """Forget one service's settings (None: all); a read under way when this happens keeps its answer to itself."""
        self._generation += 1
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    async def opening_hours(self, tenant: str, service: str) -> OpeningHours | None:
        """The runtime opening hours, or None when the config file's apply."""
        return _parse(text_or_none(await self._r.get(Keys(tenant).service_settings(service))))

    async def set_opening_hours(self, tenant: str, service: str, hours: OpeningHours) -> None:
        await self._changed(tenant, service, hours.model_dump_json())

    async def clear(self, tenant: str, service: str) -> bool:
        return bool(await self._changed(tenant, service, None))

    async def effective(self, tenant: Tenant) -> list[Service]:
        """The tenant's services with runtime settings applied (no round trip while the cached copy holds)."""
        hours = await self._runtime_hours(tenant)
        return [_applied(s, hours.get(s.id)) for s in tenant.services]

    async def service(self, tenant: Tenant, service_id: str) -> Service | None:
        return next((s for s in await self.effective(tenant) if s.id == service_id), None)

    async def applied(self, tenant: Tenant, service: Service) -> Service:
        """`service` (one of `tenant`'s) with its runtime settings applied."""
        return _applied(service, (await self._runtime_hours(tenant)).get(service.id))

    async def _runtime_hours(self, tenant: Tenant) -> dict[str, OpeningHours | None]:
        """Service id -> its runtime opening hours (None: the config file's), from the cache while it holds."""
        now = self._clock()
        cached = {s.id: self._cache.get((tenant.id, s.id)) for s in tenant.services}
        if all(c is not None and 0 <= now - c[0] < CACHE_TTL_S for c in cached.values()):
            return {sid: c[1] for sid, c in cached.items() if c is not None}
        generation = self._generation
        raw = optional_texts(await self._r.mget([Keys(tenant.id).service_settings(s.id) for s in tenant.services]))
        hours = {s.id: _parse(value) for s, value in zip(tenant.services, raw, strict=True)}
        if generation == self._generation:  # nothing dropped while reading: the answer is current
            for sid, h in hours.items():
                self._cache[(tenant.id, sid)] = (now, h)
        return hours


def _applied(service: Service, hours: OpeningHours | None) -> Service:
    return service.model_copy(update={"opening_hours": hours}) if hours else service


def _parse(value: str | None) -> OpeningHours | None:
    if not value:
        return None
    try:
        return OpeningHours.model_validate_json(value)
    except ValidationError:  # written by an older version: fall back to the config file
        return None
