"""Anonymous statistics for the pilot evaluation: counters kept at the event, never a scan of records.

Every figure is a HINCRBY inside the same Lua script as the change it counts (a ticket joins, is taken,
leaves or is abandoned; a consultation ends with an outcome; a booking is made or cancelled), on one hash
per tenant, service and Europe/Oslo calendar day (`Keys.service_stats`). The hash holds counts only: no
ticket, consultation or person id, so it outlives the records' retention and shredding (kept 400 days).
Wait and duration are histograms with fixed bucket bounds, so p50/p90 are estimated without keeping any
single person's wait. Counting in Redis inside the change makes the figures right across processes/nodes.

Usage: the stores in queue.py, consultations.py and bookings.py prepend `LUA` to their scripts and call
its functions; `StatsStore.report` reads a period back as the statistics route's shape.
See docs/statistics.md for the definition of every figure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from .keys import Keys
from .models import Channel, Outcome
from .tenants import OSLO

STATS_TTL_S = 400 * 86400  # longer than a pilot year; the hash holds no personal data
# Upper bounds (seconds, inclusive) of the histogram buckets; one more bucket takes everything above.
WAIT_BOUNDS_S = (15, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400)
DURATION_BOUNDS_S = (60, 180, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
MAX_DAYS = 366
SUPPRESS_BELOW = 5  # small-cell suppression in the CSV export: counts 1..4 are written "<5"


def _lua_list(bounds: Sequence[int]) -> str:
    return "{" + ", ".join(str(b) for b in bounds) + "}"


# Functions shared by every script that counts something. `key` is the day's stats hash.
LUA = f"""
local STATS_TTL = {STATS_TTL_S}
local WAIT_BOUNDS = {_lua_list(WAIT_BOUNDS_S)}
local DURATION_BOUNDS = {_lua_list(DURATION_BOUNDS_S)}
local function stats_bucket(bounds, value)
  for i, b in ipairs(bounds) do if value <= b then return i - 1 end end
  return #bounds
end
local function stats_count(key, ...)
  for _, field in ipairs({{...}}) do redis.call('HINCRBY', key, field, 1) end
  redis.call('EXPIRE', key, STATS_TTL)
end
local function stats_join(key, hour, channel, owner_role)
  stats_count(key, 'joined', 'channel:' .. channel, 'hour:' .. hour .. ':joined')
  if owner_role == 'nurse' then stats_count(key, 'nurse:requested') end
end
local function stats_take(key, hour, wait_s, owner_role)
  stats_count(key, 'taken', 'hour:' .. hour .. ':taken', 'wait:' .. stats_bucket(WAIT_BOUNDS, wait_s))
  if owner_role == 'nurse' then stats_count(key, 'nurse:taken') end
end
local function stats_end(key, outcome, duration_s)
  stats_count(key, 'ended', 'outcome:' .. outcome)
  if duration_s then stats_count(key, 'duration:' .. stats_bucket(DURATION_BOUNDS, duration_s)) end
end
"""


def oslo_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(OSLO).strftime("%Y-%m-%d")


def oslo_hour(ts: float) -> str:
    """Two digits, so the hash field sorts and reads the same in every script."""
    return datetime.fromtimestamp(ts, UTC).astimezone(OSLO).strftime("%H")


def stats_key(tenant: str, service: str, ts: float) -> str:
    return Keys(tenant).service_stats(service, oslo_day(ts))


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def percentile(counts: Sequence[int], bounds: Sequence[int], q: float) -> float | None:
    """Estimate a quantile from bucket counts: linear inside the bucket holding it (as Prometheus'
    histogram_quantile does); in the open last bucket its lower bound. None when nothing was counted."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = bounds[i - 1] if i > 0 else 0
            if i >= len(bounds):
                return float(lower)
            return round(lower + (bounds[i] - lower) * (rank - seen) / n, 1)
        seen += n
    return float(bounds[-1])  # pragma: no cover - rank never exceeds the total


def _histogram(bounds: Sequence[int], counts: Sequence[int]) -> list[dict[str, int | None]]:
    """Buckets as {le: upper bound in seconds (None: above the last), count}."""
    return [{"le": b, "count": c} for b, c in zip([*bounds, None], counts, strict=True)]


def _service_figures(service: str, h: dict[str, int]) -> dict[str, Any]:
    def n(field: str) -> int:
        return h.get(field, 0)

    wait = [n(f"wait:{i}") for i in range(len(WAIT_BOUNDS_S) + 1)]
    duration = [n(f"duration:{i}") for i in range(len(DURATION_BOUNDS_S) + 1)]
    return {
        "service": service,
        "tickets": {"joined": n("joined"), "taken": n("taken"), "left": n("left"), "abandoned": n("abandoned")},
        "channels": {c.value: n(f"channel:{c.value}") for c in Channel},
        "wait_s": {"p50": percentile(wait, WAIT_BOUNDS_S, 0.5), "p90": percentile(wait, WAIT_BOUNDS_S, 0.9)},
        "wait_histogram": _histogram(WAIT_BOUNDS_S, wait),
        "consultations": {
            "ended": n("ended"),
            "outcomes": {o.value: n(f"outcome:{o.value}") for o in Outcome},
            "duration_s": {"p50": percentile(duration, DURATION_BOUNDS_S, 0.5),
                           "p90": percentile(duration, DURATION_BOUNDS_S, 0.9)},
            "duration_histogram": _histogram(DURATION_BOUNDS_S, duration),
        },
        "remote_doctor": {"requested": n("nurse:requested"), "taken": n("nurse:taken")},
        "bookings": {"created": n("booking:created"), "cancelled": n("booking:cancelled"),
                     "rescheduled": n("booking:rescheduled")},
        "by_hour": [{"hour": hr, "joined": n(f"hour:{hr:02d}:joined"), "taken": n(f"hour:{hr:02d}:taken")}
                    for hr in range(24)],
    }


class StatsStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis

    async def report(self, tenant: str, services: Iterable[str], first: date, last: date) -> dict[str, Any]:
        """The period's figures per service: each day's hash summed (one pipelined read, no records)."""
        k = Keys(tenant)
        services = list(services)
        period = days(first, last)
        async with self._r.pipeline(transaction=False) as p:
            for s in services:
                for d in period:
                    p.hgetall(k.service_stats(s, d))
            rows = await p.execute()
        out = []
        for i, s in enumerate(services):
            summed: dict[str, int] = {}
            for h in rows[i * len(period):(i + 1) * len(period)]:
                for field, value in h.items():
                    summed[field] = summed.get(field, 0) + int(float(value))
            out.append(_service_figures(s, summed))
        return {"tenant": tenant, "from": first.isoformat(), "to": last.isoformat(), "services": out}


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else k, v)
    else:
        yield prefix, value


def suppressed(value: int) -> str:
    return "<5" if 0 < value < SUPPRESS_BELOW else str(value)


def to_csv(report: dict[str, Any]) -> str:
    """One row per figure (tenant, from, to, service, figure, value), for the evaluator's spreadsheet.

    Counts 1..4 are written "<5". A percentile estimated from 1..4 tickets or consultations is left
    empty, as it would come close to telling one person's wait."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tenant", "from", "to", "service", "figure", "value"])
    for s in report["services"]:
        c = s["consultations"]
        figures = {k: v for k, v in s.items() if k not in ("service", "by_hour", "wait_histogram")}
        figures["consultations"] = {k: v for k, v in c.items() if k != "duration_histogram"}
        basis = {"wait_s": sum(b["count"] for b in s["wait_histogram"]),
                 "consultations.duration_s": sum(b["count"] for b in c["duration_histogram"])}
        rows = list(_flatten("", figures))
        for name, hist in (("wait_histogram", s["wait_histogram"]), ("duration_histogram", c["duration_histogram"])):
            rows += [(f"{name}.le_{b['le'] if b['le'] is not None else 'inf'}", b["count"]) for b in hist]
        rows += [(f"by_hour.{h['hour']:02d}.{f}", h[f]) for h in s["by_hour"] for f in ("joined", "taken")]
        for figure, value in rows:
            if isinstance(value, int):
                text = suppressed(value)
            elif value is None:
                text = ""
            else:
                n = next((c for p, c in basis.items() if figure.startswith(p)), SUPPRESS_BELOW)
                text = "" if 0 < n < SUPPRESS_BELOW else f"{value:g}"
            w.writerow([report["tenant"], report["from"], report["to"], s["service"], figure, text])
    return buf.getvalue()
