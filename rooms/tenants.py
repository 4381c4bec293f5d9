"""Tenants (municipalities), their services and opening hours in Europe/Oslo."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .models import Channel

OSLO = ZoneInfo("Europe/Oslo")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
MAX_CLOSURES = 100  # a few years of public holidays


def _parse_span(value: str) -> tuple[time, time] | None:
    """'08:00-22:00' -> (08:00, 22:00); 'closed' -> None; '00:00-24:00' means the whole day."""
    if value == "closed":
        return None
    m = _SPAN.match(value)
    if not m:  # the value is not repeated: an API answer names the field and the rule only
        raise ValueError("not HH:MM-HH:MM, 'closed' or '24/7'")
    start = time(int(m[1]), int(m[2]))
    end = time.max if (m[3], m[4]) == ("24", "00") else time(int(m[3]) % 24, int(m[4]))
    if end <= start:
        raise ValueError("ends before it starts")
    return start, end


class OpeningHours(BaseModel):
    """Per weekday 'HH:MM-HH:MM' or 'closed'; `default` fills the days not named. '24/7' for always open.
    `closures`: Europe/Oslo dates closed all day (public holidays), whatever the weekday says; kept sorted,
    each once. The config file and the admin API (signaling/api/admin.py) read this one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default: str = "08:00-22:00"
    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None
    closures: tuple[date, ...] = Field(default=(), max_length=MAX_CLOSURES,
                                       description="YYYY-MM-DD, Europe/Oslo")

    @field_validator("default", *WEEKDAYS)
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        if v is not None and v != "24/7":
            _parse_span(v)
        return v

    @field_validator("closures")
    @classmethod
    def _sorted_once(cls, v: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(v)))

    def for_day(self, weekday: int) -> str:
        day = getattr(self, WEEKDAYS[weekday])
        value = day if day is not None else self.default
        return "00:00-24:00" if value == "24/7" else value

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(OSLO)
        if local.date() in self.closures:
            return False
        span = _parse_span(self.for_day(local.weekday()))
        return span is not None and span[0] <= local.time() <= span[1]

    def describe(self) -> dict[str, str]:
        return {d: self.for_day(i) for i, d in enumerate(WEEKDAYS)}

    def next_opening(self, at: datetime) -> datetime | None:
        local = at.astimezone(OSLO)
        for offset in range(8 + len(self.closures)):
            day = (local + timedelta(days=offset)).date()
            span = None if day in self.closures else _parse_span(self.for_day(day.weekday()))
            if span is None:
                continue
            start = datetime.combine(day, span[0], OSLO)
            if start > local:
                return start
        return None


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_ID)
    name: str
    opening_hours: OpeningHours = OpeningHours()
    channels: tuple[Channel, ...] = (Channel.VIDEO, Channel.CHAT, Channel.PHONE)
    median_consultation_s: int = Field(default=600, gt=0, le=24 * 3600)
    # The most a publisher in this service's consultations is told to send (REMB), instead of the process's
    # default (1.5 Mbit/s): e.g. lower for a service whose patients are mostly on 4G in rural areas.
    max_video_bitrate_bps: int | None = Field(default=None, ge=150_000, le=10_000_000)


SMS_TEMPLATE = "{tenant}: Her er lenken til videokonsultasjonen din: {link}"


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_ID)
    name: str
    services: tuple[Service, ...]
    # The whole SMS text with an invite link; placeholders {tenant} and {link} only ({link} required).
    sms_template: str = Field(default=SMS_TEMPLATE, max_length=300,
                              pattern=r"^(?:[^{}]|\{tenant\}|\{link\})*\{link\}(?:[^{}]|\{tenant\}|\{link\})*$")

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)


def closed_message(tenant: Tenant, service: Service, now: datetime) -> str:
    """What a citizen reads when a service is closed: when it opens and where to call instead."""
    hours = service.opening_hours.describe()
    nxt = service.opening_hours.next_opening(now)
    when = f" Den åpner igjen {nxt:%d.%m. kl. %H:%M}." if nxt else ""
    today = hours[WEEKDAYS[now.astimezone(OSLO).weekday()]]
    today_text = "stengt hele dagen" if today == "closed" else f"åpningstid i dag: {today}"
    return (
        f"{service.name} i {tenant.name} er stengt nå ({today_text})."
        f"{when} Ring legevakt på 116117, eller 113 ved fare for liv."
    )
