"""Pilot day: the morning peak of a 20-municipality pilot, compressed in time: citizens queue for video or chat,
clinicians take them, video and chat consultations run side by side on one server process.

    python -m load_tests.scenarios.pilot_day [--municipalities 20] [--time-scale 60] [--uptake 1.5]

Rates (all in real time; the run divides every duration by --time-scale, so the number of consultations
running at once is the real one while setups, ends and queue operations come --time-scale times faster):
- population = municipalities x --inhabitants (15,000, a middling Norwegian municipality) = 300,000 by default;
- national peak 250 concurrent consultations for 5.6 M inhabitants, scaled to the pilot population and
  multiplied by --uptake (1.5: pilot municipalities are the keen ones): ~20 concurrent at peak;
- 60 % video (mean 12 min), 40 % chat (mean 20 min, one message per side every 20 s); arrival rate at peak =
  concurrent share / mean duration; the morning 08:00-10:00: rate rising from 30 % to 100 % over 08:00-08:30,
  peak until 09:45, no new arrivals after that;
- clinicians = 1.2 x peak concurrency; each takes the next ticket, runs the consultation, ends it, takes the next.
As run, a clinician facing an empty queue looks again after 10 s real but at least 1.5 s (the per-subject write
limit is 60/min), a video consultation lasts at least 6 s and a chat side sends at most 2 messages/s (below the
chat's 30 per 10 s limit). Each video consultation: both sides join the signaling WebSocket and publish VP8 640x480
~800 kbps + Opus (the pre-encoded clip of `video_load`, received frames counted, not decoded). Each chat
consultation: two Socket.IO clients, send -> deliver latency per message. Citizens poll their ticket every 30 s
while waiting.

Server: one `nettlege serve` process (private redis-server, REDIS_URL) pinned to CPU 0. Load: one generator
process pinned to the other CPU(s), with Redis. Targets: queue join and take p99 <= 0.5 s, video join->first
frame p95 <= 0.8 s, mean delivered fps >= 27 of 30, chat send->deliver p99 <= 0.5 s, no failed setups.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from load_tests import harness
from load_tests.clients import (
    ChatClient,
    PreEncodedMedia,
    Reception,
    Rest,
    SignalClient,
    encode_audio_clip,
    encode_video_clip,
)

NATIONAL_PEAK = 250
POPULATION = 5_600_000
DAY_START_H, DAY_END_H = 8.0, 10.0
MIN_CHAT_GAP_S = 0.25  # between messages of a consultation (both sides), as run
MIN_VIDEO_S = 6.0  # shortest video consultation as run
MIN_TAKE_RETRY_S = 1.5  # a clinician facing an empty queue looks again after this long at the least
TARGETS = {"join_p99_max_s": 0.5, "take_p99_max_s": 0.5, "first_frame_p95_max_s": 0.8, "delivered_fps_min": 27.0,
           "chat_deliver_p99_max_s": 0.5}
QUEUE = f"/api/v1/tenants/{harness.TENANT}/services/{harness.SERVICE}/queue"


def rate_factor(hour: float) -> float:
    """The arrival rate at a simulated hour, as a share of the peak's."""
    if hour < 8.5:
        return 0.3 + 0.7 * (hour - 8.0) / 0.5
    return 1.0 if hour < 9.75 else 0.0


def arrival_plan(peak_arrivals_per_min: float, video_share: float, rng: random.Random) -> list[tuple[float, str]]:
    """(simulated hour, channel) of every citizen's arrival over the morning: a Poisson process at the peak rate,
    each arrival kept with the share `rate_factor` gives its hour (thinning), so the rate follows the morning's
    curve within a gap as well as across the day."""
    schedule: list[tuple[float, str]] = []
    hour = DAY_START_H
    while (hour := hour + rng.expovariate(peak_arrivals_per_min * 60)) < DAY_END_H:
        if rng.random() < rate_factor(hour):
            schedule.append((hour, "video" if rng.random() < video_share else "chat"))
    return schedule


async def day(base: str, p: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    scale = p["time_scale"]
    rng = random.Random(11)
    video_clip, audio_clip = encode_video_clip(), encode_audio_clip()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    tag = f"{int(time.time())}"
    rest = Rest(http, base)
    lat: dict[str, list[float]] = {"chat_ack": [], "chat_deliver": []}
    first_frames: list[tuple[float, float]] = []  # (hour, seconds)
    fps: list[tuple[float, float]] = []
    chat_points: list[tuple[float, float]] = []
    errors: dict[str, int] = {}  # besides the HTTP errors `rest` counts
    owners: dict[str, str] = {}  # ticket id -> citizen token
    active = {"video": 0, "chat": 0}
    timeline: list[tuple[float, int, int, int]] = []  # hour, video, chat, queue length
    counts = {"arrived": 0, "video_done": 0, "chat_done": 0}
    t0 = time.monotonic()
    end_at = t0 + (DAY_END_H - DAY_START_H) * 3600 / scale

    def hour() -> float:
        return DAY_START_H + (time.monotonic() - t0) * scale / 3600

    def err(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    @contextlib.asynccontextmanager
    async def running(channel: str, clients: list[Any]) -> AsyncIterator[None]:
        """A consultation in progress: counted while it runs, a failure counted as an error of its channel (the
        day goes on), its clients closed at the end."""
        active[channel] += 1
        try:
            yield
        except Exception as exc:
            err(f"{channel} {type(exc).__name__}")
        finally:
            active[channel] -= 1
            for client in clients:
                await client.close()
        counts[f"{channel}_done"] += 1

    async def video(cid: str, doctor: str, citizen_token: str, duration: float) -> None:
        status, data = await rest.call("poll", "GET", f"/api/v1/consultations/{cid}", doctor)
        signal_url = data["signal_url"] if status == 200 else None
        node = signal_url.split("/api/")[0] if signal_url and "://" in signal_url else base
        pair = [SignalClient(http, base, cid, tok, PreEncodedMedia([video_clip, audio_clip], Reception()),
                             signal_url=signal_url) for tok in (doctor, citizen_token)]
        start = time.monotonic()
        async with running("video", pair):
            await asyncio.wait_for(asyncio.gather(*(c.connect(origin=node) for c in pair)), 20)
            await asyncio.sleep(duration)
            for c in pair:
                got = c.media.reception
                if got.first_video_at is None:
                    err("video no picture")
                    continue
                first_frames.append((hour(), got.first_video_at - start))
                shown = time.monotonic() - got.first_video_at
                if shown > 2:
                    fps.append((hour(), got.frames["video"] / shown))

    async def chat(cid: str, doctor: str, citizen_token: str, duration: float) -> None:
        sent: dict[str, float] = {}
        clients: list[ChatClient] = []

        def delivered(text: str, seconds: float) -> None:
            lat["chat_deliver"].append(seconds)
            chat_points.append((hour(), seconds))

        async with running("chat", clients):
            for tok, role in ((doctor, "clinician"), (citizen_token, "citizen")):
                client = ChatClient(http, base, tok, role, sent, delivered)
                await client.join(cid, harness.ORIGIN, timeout=20)
                clients.append(client)
            stop = time.monotonic() + duration
            seq = 0
            while time.monotonic() < stop:
                ack, seconds = await clients[seq % 2].send(cid, f"m{seq}", f"{cid}:{seq}", timeout=20)
                if ack.get("id"):
                    lat["chat_ack"].append(seconds)
                else:
                    err(f"chat message {ack.get('error')}")
                seq += 1
                # one message per side every 20 s, but never faster than 2/s per side: the chat's own limit is
                # 30 per 10 s per participant, and time compression must not turn the pilot into a flood
                await asyncio.sleep(max(10 / scale, MIN_CHAT_GAP_S))

    async def clinician(j: int) -> None:
        token = harness.dev_token(f"daydr-{tag}-{j}", "clinician")

        async def consult(taken: dict[str, Any]) -> None:
            owner = owners.get(taken["ticket_id"])
            if owner is None:
                err("take: unknown ticket")
                return
            channel = taken["ticket"]["channel"]
            mean = p["video_min"] if channel == "video" else p["chat_min"]
            duration = min(max(rng.expovariate(1 / mean), 3), 40) * 60 / scale
            if channel == "video":
                duration = max(duration, MIN_VIDEO_S)  # long enough to see a picture and count frames
            await (video if channel == "video" else chat)(taken["consultation_id"], token, owner, duration)

        await asyncio.sleep(rng.uniform(0, 5 / scale))
        # an empty queue: look again in 10 s, but not faster than the per-subject write limit (60/min) allows
        await rest.take_loop(QUEUE, token, until=end_at, retry_s=max(10 / scale, MIN_TAKE_RETRY_S), consult=consult)

    async def citizen(i: int, channel: str) -> None:
        token = harness.dev_token(f"day-{tag}-{i}", "citizen")
        await rest.wait_in_queue(QUEUE, token, {"channel": channel, "reason": "hoste"}, poll_s=30 / scale,
                                 until=end_at, on_joined=lambda ticket: owners.setdefault(ticket, token))

    async def arrivals() -> None:
        tasks = []
        for at, channel in arrival_plan(p["peak_arrivals_per_min"], p["video_share"], random.Random(12)):
            await asyncio.sleep(max(0.0, (at - hour()) * 3600 / scale))
            tasks.append(asyncio.create_task(citizen(counts["arrived"], channel)))
            counts["arrived"] += 1
        await asyncio.gather(*tasks)

    workers = [asyncio.create_task(clinician(j)) for j in range(p["clinicians"])]
    await asyncio.gather(arrivals(), rest.watch_queue(harness.TENANT, harness.SERVICE, until=end_at, sample=lambda n: (
        timeline.append((hour(), active["video"], active["chat"], n)))))
    await asyncio.gather(*workers)
    await http.close()
    lat.update({k: rest.latency.get(k, []) for k in ("join", "take", "poll", "end")})
    return {"lat": lat, "first_frames": first_frames, "fps": fps, "chat_points": chat_points,
            "errors": {**rest.errors(), **errors}, "timeline": timeline, "counts": counts,
            "wall_s": time.monotonic() - t0}


def load_generator() -> dict[str, Any]:
    return {"run": day}


def summarise(res: dict[str, Any], cpu: list[tuple[float, float]], title: str) -> dict[str, Any]:
    lat, tl = res["lat"], res["timeline"]
    ff = [s for _, s in res["first_frames"]]
    fps = [f for _, f in res["fps"]]
    figures = {
        "join_p99_s": harness.p4(lat["join"], 99), "take_p99_s": harness.p4(lat["take"], 99),
        "first_frame_p95_s": harness.p4(ff, 95), "delivered_fps_mean": harness.r4(sum(fps) / len(fps)) if fps else None,
        "chat_deliver_p99_s": harness.p4(lat["chat_deliver"], 99),
    }
    at_most = {"join_p99_s": "join_p99_max_s", "take_p99_s": "take_p99_max_s",
               "first_frame_p95_s": "first_frame_p95_max_s", "chat_deliver_p99_s": "chat_deliver_p99_max_s"}
    checks = {k: figures[k] is not None and figures[k] <= TARGETS[t] for k, t in at_most.items()}
    checks["delivered_fps_mean"] = fps != [] and figures["delivered_fps_mean"] >= TARGETS["delivered_fps_min"]
    checks["no_errors"] = not res["errors"]
    plt = harness.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot([t[0] for t in tl], [t[1] for t in tl], label="video consultations")
    axes[0].plot([t[0] for t in tl], [t[2] for t in tl], label="chat consultations")
    axes[0].plot([t[0] for t in tl], [t[3] for t in tl], label="tickets waiting")
    axes[0].set(xlabel="hour of day (simulated)", ylabel="count", title="load")
    axes[1].plot([h for h, _ in cpu], [c for _, c in cpu], label="server CPU % of one core")
    axes[1].set(xlabel="hour of day (simulated)", ylabel="%", title="server CPU", ylim=(0, 105))
    axes[2].plot([h for h, _ in res["first_frames"]], ff, ".", label="video join → first frame")
    axes[2].plot([h for h, _ in res["chat_points"]], [s for _, s in res["chat_points"]], ",", alpha=0.5,
                 label="chat send → deliver")
    axes[2].axhline(TARGETS["first_frame_p95_max_s"], color="red", ls="--", lw=1, label="first-frame target (p95)")
    axes[2].axhline(TARGETS["chat_deliver_p99_max_s"], color="purple", ls=":", lw=1, label="chat target (p99)")
    axes[2].set(xlabel="hour of day (simulated)", ylabel="seconds", yscale="log", title="latencies")
    return {
        "within_targets": all(checks.values()), "checks": checks, "targets": TARGETS, **figures,
        "join_p50_s": harness.p4(lat["join"], 50), "take_p50_s": harness.p4(lat["take"], 50),
        "poll_p99_s": harness.p4(lat["poll"], 99), "end_p99_s": harness.p4(lat["end"], 99),
        "first_frame_p50_s": harness.p4(ff, 50), "delivered_fps_min": harness.r4(min(fps)) if fps else None,
        "chat_deliver_p50_s": harness.p4(lat["chat_deliver"], 50),
        "chat_ack_p99_s": harness.p4(lat["chat_ack"], 99), "chat_messages": len(lat["chat_deliver"]),
        "peak_video_concurrent": max((t[1] for t in tl), default=0),
        "peak_chat_concurrent": max((t[2] for t in tl), default=0),
        "peak_queue_length": max((t[3] for t in tl), default=0), **res["counts"], "errors": res["errors"],
        "plot": harness.save_plot(fig, axes, "pilot_day", title, 7),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.scenario_parser(__doc__)
    parser.add_argument("--municipalities", type=int, default=20)
    parser.add_argument("--inhabitants", type=int, default=15_000, help="per municipality")
    parser.add_argument("--uptake", type=float, default=1.5, help="pilot uptake relative to the national average")
    parser.add_argument("--video-share", type=float, default=0.6)
    parser.add_argument("--video-min", type=float, default=12.0, help="mean video consultation (real minutes)")
    parser.add_argument("--chat-min", type=float, default=20.0, help="mean chat consultation (real minutes)")
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not 30 <= args.time_scale <= 120:
        parser.error("--time-scale 30..120 (the run, (10:00-08:00) / --time-scale, is 60..240 s)")
    if not 1 <= args.municipalities <= 500 or not 100 <= args.inhabitants <= 1_000_000 or args.uptake <= 0 \
            or not 0 <= args.video_share <= 1 or args.video_min <= 0 or args.chat_min <= 0:
        parser.error("--municipalities 1..500, --inhabitants 100..1000000, --uptake > 0, --video-share 0..1, "
                     "--video-min and --chat-min > 0")
    return args


def plan(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the load generator's parameters, the model's figures for the result) from the command line."""
    peak = NATIONAL_PEAK * args.municipalities * args.inhabitants / POPULATION * args.uptake
    # Little's law per channel: arrivals/min = concurrent share / mean duration.
    video_arrivals = peak * args.video_share / args.video_min
    peak_arrivals = video_arrivals + peak * (1 - args.video_share) / args.chat_min
    params = {"time_scale": args.time_scale, "peak_arrivals_per_min": peak_arrivals,
              "video_share": video_arrivals / peak_arrivals, "video_min": args.video_min, "chat_min": args.chat_min,
              "clinicians": math.ceil(1.2 * peak)}
    model = {"time_scale": args.time_scale, "simulated": "08:00-10:00", "municipalities": args.municipalities,
             "population": args.municipalities * args.inhabitants, "peak_concurrent_model": round(peak, 1),
             "mean_consultation_min": round(args.video_share * args.video_min
                                            + (1 - args.video_share) * args.chat_min, 1),
             "peak_arrivals_per_min_real": round(peak_arrivals, 2), "clinicians": params["clinicians"]}
    return params, model


def main() -> None:
    args = parse_args()
    params, model = plan(args)

    def summary(res: dict[str, Any], series: list[tuple[float, float]], bench: harness.Bench) -> dict[str, Any]:
        hours = [(DAY_START_H + t * args.time_scale / 3600, c) for t, c in series]
        return {**model, **summarise(res, hours, f"pilot_day: {args.municipalities} municipalities, 08:00-10:00 "
                                               f"at {args.time_scale:g}x, one nettlege process on CPU "
                                               f"{bench.server_cpus}")}

    harness.run_scenario("pilot_day", load_generator, summary, load="aiortc, Socket.IO, aiohttp",
                         extra_toml=f'allowed_origins = ["{harness.ORIGIN}"]\n', p=params)


if __name__ == "__main__":
    main()
