"""Media benchmark: `nettlege serve` itself against aiortc's transcoding relay and Janus VideoRoom, same clients,
same run.

    python -m load_tests.media_bench [--consultations 1,4,8] [--runs 3] [--duration 8] [--servers nettlege,relay,janus]
    make bench

For each run, each K and each server: the server alone on CPU 0 (`taskset`), one load-generator process on CPU 1
(the aiortc clients of `load_tests.clients`: VP8 640x480 ~800 kbps + Opus, pre-encoded; the first consultation of
each step decodes its video and checks the markers). K 1:1 consultations, started 0.1 s apart:
- nettlege: a private redis-server; the citizen joins the queue and the clinician takes the ticket (REST, dev
  tokens), both open the signaling WebSocket at the consultation's `signal_url` and publish;
- relay: `load_tests.media_server --mode baseline` (aiortc `MediaRelay`: decode + re-encode per subscriber),
  same offer/answer messages; at most `--relay-max` consultations (default 1: one consultation takes ~60 % of
  its core, two saturate it, and a saturated process under-reports its cost);
- janus: a private `janus` (VideoRoom plugin, HTTP API); a room per consultation, each participant a publisher
  handle (its offer, Janus's answer) and a subscriber handle on the other's feed (Janus's offer, its answer).
Publishers number their RTP transport-wide when the server's answer accepts transport-cc, as Chrome and Firefox do
(`--no-transport-cc`: as aiortc peers, which do not; the relay never accepts it). Then `--settle` seconds, then a
`--duration` window: server CPU (user + system of its process), RTP packets the
clients published and received (aiortc stats), video frames each client received, the machine's kernel UDP
receive-buffer errors. Reported per run: % of a core per consultation, server CPU µs per published and per
forwarded packet, join -> first frame p50/p95, delivered/published video frames, delivered fps, UDP errors, the
load generator's CPU and run-queue wait, load average; then medians per (server, K) over the runs in which the
clients got >= 95 % of the frames (on a busy shared machine a starved run measures the machine). Every run and
the summary are appended to load_tests/results/media_bench.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp

from media import aiortc_passthrough

from .clients import (
    BareSignal,
    Clip,
    PreEncodedMedia,
    Reception,
    SignalClient,
    encode_audio_clip,
    encode_video_clip,
)
from .harness import (
    SERVICE,
    TENANT,
    CpuMeter,
    Worker,
    auth,
    cpu_plan,
    dev_token,
    machine,
    median,
    percentile,
    pinned_server,
    r4,
    record,
    stop,
    taskset,
    udp_rcvbuf_errors,
)

SENT_FPS = 30
GOALS = {"cpu_per_published_packet_vs_janus_max": 1.5, "core_pct_per_consultation_at_4_max": 4.0,
         "first_frame_p95_max_s": 0.5, "delivered_fps_min": 29.0}


# --- the load generator (its own process) ---------------------------------------------------------------

class Participant:
    def __init__(self, consultation: int, role: str, sender_id: int, decode: bool) -> None:
        self.consultation, self.role, self.sender_id = consultation, role, sender_id
        self.reception = Reception(decode=decode)
        self.media: list[PreEncodedMedia] = []
        self.closers: list[Any] = []
        self.joined_at = 0.0
        self.node = ""  # the server whose signaling and media it uses
        self.events: list[dict[str, Any]] = []  # nettlege's signaling events (quality: video paused, ...)


class Load:
    def __init__(self) -> None:
        self.http: aiohttp.ClientSession | None = None
        self.clips: list[tuple[Clip, Clip]] = []
        self.participants: list[Participant] = []
        self.count = 0
        self.tag = str(int(time.time()))
        self.transport_cc = True

    async def setup(self, transport_cc: bool = True) -> dict[str, Any]:
        self.transport_cc = transport_cc
        audio = encode_audio_clip()
        # Two clips, one per side of a consultation: a subscriber's markers must carry the other side's id.
        self.clips = [(encode_video_clip(sender_id=i), audio) for i in (1, 2)]
        return {"video_kbps": round(self.clips[0][0].bitrate / 1000), "audio_kbps": round(audio.bitrate / 1000),
                "clip_frames": len(self.clips[0][0].packets)}

    def _participants(self, i: int, decode: bool) -> list[Participant]:
        return [Participant(i, role, sender, decode) for role, sender in (("clinician", 1), ("citizen", 2))]

    def _media(self, p: Participant, publish: bool = True, ip: str = "127.0.0.1") -> PreEncodedMedia:
        media = PreEncodedMedia(list(self.clips[p.sender_id - 1]) if publish else [], p.reception, ip)
        if publish and self.transport_cc:  # as a browser: offered, and used if the answer accepts it
            aiortc_passthrough.send_transport_cc(media.pc)
        p.media.append(media)
        return media

    async def _nettlege(self, base: str, i: int, pair: list[Participant]) -> None:
        assert self.http is not None
        citizen, doctor = dev_token(f"cit-{self.tag}-{i}", "citizen"), dev_token(f"dr-{self.tag}-{i}", "clinician")
        queue = f"{base}/api/v1/tenants/{TENANT}/services/{SERVICE}/queue"
        async with self.http.post(queue, json={"channel": "video", "reason": "last"}, headers=auth(citizen)) as r:
            r.raise_for_status()
        async with self.http.post(f"{queue}/take", headers=auth(doctor)) as r:
            r.raise_for_status()
            cid = (await r.json())["consultation_id"]
        async with self.http.get(f"{base}/api/v1/consultations/{cid}", headers=auth(doctor)) as r:
            r.raise_for_status()
            signal_url = (await r.json())["signal_url"]
        clients = [SignalClient(self.http, base, cid, token, self._media(p), p.role, signal_url)
                   for p, token in zip(pair, (doctor, citizen), strict=True)]
        node = signal_url.split("/api/")[0] or base
        for p, c in zip(pair, clients, strict=True):
            p.closers.append(c.close)
            p.joined_at = time.monotonic()
            p.node = node
            p.events = c.events
        # a browser's Origin: the page's own origin is allowed outside production
        await asyncio.gather(*(c.connect(origin=node) for c in clients))

    async def _relay(self, base: str, i: int, pair: list[Participant]) -> None:
        assert self.http is not None
        clients = [BareSignal(self.http, f"{base}/signal/c{self.tag}-{i}/{p.role}", self._media(p)) for p in pair]
        for p, c in zip(pair, clients, strict=True):
            p.closers.append(c.close)
            p.joined_at = time.monotonic()
        await asyncio.gather(*(c.connect() for c in clients))

    async def _janus(self, url: str, i: int, pair: list[Participant], ip: str) -> None:
        from .janus import JanusSession, create_room

        assert self.http is not None
        room = 1000 + i
        sessions = [JanusSession(self.http, url) for _ in pair]
        for p, s in zip(pair, sessions, strict=True):
            p.closers.append(s.destroy)
            await s.create()
        await create_room(sessions[0], room)
        for p in pair:
            p.joined_at = time.monotonic()

        async def publish(p: Participant, session: Any) -> int:
            handle = await session.attach()
            joined = await handle.send({"request": "join", "ptype": "publisher", "room": room, "display": p.role})
            media = self._media(p, ip=ip)
            event = await handle.send({"request": "configure", "audio": True, "video": True},
                                      {"type": "offer", "sdp": await media.local_offer(), "trickle": False})
            await media.remote_answer(event["jsep"]["sdp"])
            return joined["plugindata"]["data"]["id"]

        async def subscribe(p: Participant, session: Any, feed: int) -> None:
            handle = await session.attach()
            for _ in range(200):  # a feed exists once its publisher's WebRTC is up (as a browser learns by event)
                try:
                    event = await handle.send({"request": "join", "ptype": "subscriber", "room": room, "feed": feed})
                    break
                except RuntimeError as exc:
                    if "No such feed" not in str(exc):
                        raise
                    await asyncio.sleep(0.05)
            media = self._media(p, publish=False, ip=ip)
            answer = await media.local_answer(event["jsep"]["sdp"])
            await handle.send({"request": "start"}, {"type": "answer", "sdp": answer, "trickle": False})

        feeds = await asyncio.gather(*(publish(p, s) for p, s in zip(pair, sessions, strict=True)))
        await asyncio.gather(subscribe(pair[0], sessions[0], feeds[1]), subscribe(pair[1], sessions[1], feeds[0]))

    async def add(self, server: str, url: str, n: int, ip: str = "127.0.0.1", gap_s: float = 0.1,
                  wait_s: float = 5.0, sample: bool = True) -> dict[str, Any]:
        """Start `n` 1:1 consultations `gap_s` apart (with `sample`, the first decodes its video), then wait for
        their first frames."""
        if self.http is None:
            self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        new: list[Participant] = []
        errors: list[str] = []
        for k in range(n):
            i = self.count
            self.count += 1
            pair = self._participants(i, decode=sample and k == 0)
            new += pair
            try:
                if server == "nettlege":
                    await asyncio.wait_for(self._nettlege(url, i, pair), 20)
                elif server == "relay":
                    await asyncio.wait_for(self._relay(url, i, pair), 20)
                else:
                    await asyncio.wait_for(self._janus(url, i, pair, ip), 20)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(gap_s)
        self.participants += new
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(p.reception.first_video_at is None for p in new):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # frames arrive in aiortc callbacks: polling is simpler than an event
        first = [p.reception.first_video_at - p.joined_at for p in new if p.reception.first_video_at is not None]
        nodes: dict[str, int] = {}
        for p in new[::2]:
            nodes[p.node or url] = nodes.get(p.node or url, 0) + 1
        return {"consultations": self.count, "first_frame_s": first, "errors": errors, "nodes": nodes,
                "no_picture": sum(p.reception.first_video_at is None for p in new)}

    async def _snapshot(self) -> dict[str, Any]:
        rtp = await asyncio.gather(*(m.rtp() for p in self.participants for m in p.media))
        return {"at": time.monotonic(), "frames": [p.reception.frames["video"] for p in self.participants],
                "published_frames": sum(t.sent for p in self.participants for m in p.media for t in m.tracks
                                        if t.kind == "video"),
                "markers": [len(p.reception.markers) for p in self.participants],
                **{k: sum(r[k] for r in rtp) for k in ("sent", "received", "lost")}}

    async def measure(self, duration: float) -> dict[str, Any]:
        start = await self._snapshot()
        await asyncio.sleep(duration)
        end = await self._snapshot()
        elapsed = end["at"] - start["at"]
        fps = [(b - a) / elapsed for a, b in zip(start["frames"], end["frames"], strict=True)]
        checks = [p.reception.check_markers(m0, 3 - p.sender_id, len(self.clips[0][0].packets))
                  for p, m0 in zip(self.participants, start["markers"], strict=True) if p.reception.decode]
        # nettlege pauses a subscriber's video when its link looks overrun (a starved client looks like one)
        pauses = sum(e.get("type") == "quality" and e.get("video") == "paused"
                     for p in self.participants for e in p.events)
        return {"seconds": elapsed, "fps": fps, "published_packets": end["sent"] - start["sent"],
                "video_pauses": pauses,
                "published_frames": end["published_frames"] - start["published_frames"],
                "received_frames": sum(end["frames"]) - sum(start["frames"]),
                "received_packets": end["received"] - start["received"],
                "lost_packets": max(0, end["lost"] - start["lost"]),
                "sample": {k: sum(c[k] for c in checks) for k in checks[0]} if checks else None}

    async def close(self) -> dict[str, Any]:
        for p in self.participants:
            for close in p.closers:
                with contextlib.suppress(Exception):
                    await close()
            for m in p.media:
                with contextlib.suppress(Exception):
                    await m.close()
        self.participants.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        return {"closed": True}


def load_generator() -> dict[str, Any]:
    load = Load()
    return {"setup": load.setup, "add": load.add, "measure": load.measure, "close": load.close, "quit": load.close}


# --- the driver -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def server(kind: str, cpu_list: list[int]) -> Iterator[tuple[str, list[int], dict[str, Any]]]:
    """(URL, pids to meter, what the load generator needs) of one server on `cpu_list`."""
    if kind == "nettlege":
        with pinned_server() as bench:
            yield bench.base, bench.server.pids, {}
    elif kind == "relay":
        proc = subprocess.Popen([*taskset(cpu_list), sys.executable, "-m", "load_tests.media_server",
                                 "--mode", "baseline"], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            yield f"http://127.0.0.1:{port}", [proc.pid], {}
        finally:
            stop(proc)
    else:
        from .janus import janus_server

        with janus_server(prefix=taskset(cpu_list)) as (url, proc, ip):
            yield url, [proc.pid], {"ip": ip}


def run_one(load: Worker, kind: str, k: int, args: argparse.Namespace, server_cpus: list[int],
            load_cpus: list[int]) -> dict[str, Any]:
    started = machine()
    with server(kind, server_cpus) as (url, pids, extra):
        added = load.call("add", timeout=60 + 5 * k, server=kind, url=url, n=k, ip=extra.get("ip", "127.0.0.1"))
        time.sleep(args.settle)
        meter = CpuMeter({str(pid): pid for pid in pids})
        load_meter = CpuMeter({"load": load.pid})  # a starved load generator shows as lost frames, not as cost
        udp0 = udp_rcvbuf_errors()
        meter.start()
        load_meter.start()
        window = load.call("measure", timeout=60 + args.duration, duration=args.duration)
        cpu = meter.stop()
        load_cpu = load_meter.stop()["load"]
        udp = udp_rcvbuf_errors() - udp0
        load.call("close", timeout=60)
    cpu_s = sum(meter.seconds.values())
    cpu_pct = sum(cpu.values())
    published, forwarded = window["published_packets"], window["received_packets"]
    fps = window["fps"]
    first = added["first_frame_s"]
    return {
        "server": kind, "consultations": k,
        "server_cpu_pct": round(cpu_pct, 1), "core_pct_per_consultation": round(cpu_pct / k, 2),
        "cpu_us_per_published_packet": round(1e6 * cpu_s / published, 1) if published else None,
        "cpu_us_per_forwarded_packet": round(1e6 * cpu_s / forwarded, 1) if forwarded else None,
        "first_frame_p50_s": r4(percentile(first, 50)), "first_frame_p95_s": r4(percentile(first, 95)),
        # video frames the subscribers received / frames the publishers sent (packets differ in number when a
        # server re-packetizes)
        "delivered_over_published": (r4(window["received_frames"] / window["published_frames"])
                                     if window["published_frames"] else None),
        "forwarded_over_published_packets": r4(forwarded / published) if published else None,
        "packet_loss": r4(window["lost_packets"] / (forwarded + window["lost_packets"])) if forwarded else None,
        "delivered_fps": round(sum(fps) / len(fps), 2) if fps else None,
        "delivered_fps_min": round(min(fps), 2) if fps else None,
        "published_pps": round(published / window["seconds"], 1),
        "forwarded_pps": round(forwarded / window["seconds"], 1),
        "udp_rcvbuf_errors": udp, "video_pauses": window["video_pauses"], "no_picture": added["no_picture"],
        "setup_errors": added["errors"][:3],
        "sample_markers": window["sample"], "server_runqueue_wait_pct": max(meter.waited.values(), default=None),
        "load_cpu_pct": load_cpu, "load_runqueue_wait_pct": load_meter.waited["load"],
        "loadavg_1_5_15": started["loadavg_1_5_15"],
    }


FIGURES = ["core_pct_per_consultation", "cpu_us_per_published_packet", "cpu_us_per_forwarded_packet",
           "first_frame_p50_s", "first_frame_p95_s", "delivered_over_published", "packet_loss", "delivered_fps",
           "udp_rcvbuf_errors", "server_cpu_pct", "server_runqueue_wait_pct", "load_cpu_pct", "load_runqueue_wait_pct"]


DELIVERED_MIN = 0.95  # below this a run measured a starved machine, not the server's cost per packet


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians per (server, K) over the runs whose clients got >= 95 % of the published frames (all runs when
    none did: then the row says so with `valid_runs` 0). A starved load generator or server makes CPU per
    packet meaningless: packets that never arrive cost nothing."""
    order = ["nettlege", "janus", "relay"]
    rows = []
    for kind, k in sorted({(r["server"], r["consultations"]) for r in runs}, key=lambda x: (x[1], order.index(x[0]))):
        mine = [r for r in runs if r["server"] == kind and r["consultations"] == k]
        valid = [r for r in mine if (r["delivered_over_published"] or 0) >= DELIVERED_MIN]
        row = {"server": kind, "consultations": k, "runs": len(mine), "valid_runs": len(valid),
               **{f: r4(median([r[f] for r in valid or mine])) for f in FIGURES},
               "no_picture_max": max(r["no_picture"] for r in mine),
               "loadavg_1m": [r["loadavg_1_5_15"][0] for r in mine]}
        rows.append(row)
    for row in rows:
        janus = next((r for r in rows if r["server"] == "janus" and r["consultations"] == row["consultations"]), None)
        if janus and janus["cpu_us_per_published_packet"] and row["cpu_us_per_published_packet"]:
            row["cpu_per_published_packet_vs_janus"] = round(row["cpu_us_per_published_packet"]
                                                             / janus["cpu_us_per_published_packet"], 2)
    return rows


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, judged on the K at which nettlege had runs with >= 95 % of frames delivered (None: not
    measurable in this run); the CPU ratio only where Janus had such runs too."""
    ours = [r for r in rows if r["server"] == "nettlege" and r["valid_runs"]]
    janus_ok = {r["consultations"] for r in rows if r["server"] == "janus" and r["valid_runs"]}
    at4 = next((r for r in ours if r["consultations"] == 4), None)
    ratios = [r.get("cpu_per_published_packet_vs_janus") for r in ours if r["consultations"] in janus_ok]
    return {
        "judged_at_k": [r["consultations"] for r in ours],
        "cpu_per_published_packet_vs_janus_le_1.5": (all(x is not None and x <= 1.5 for x in ratios)
                                                     if ratios else None),
        "core_pct_per_consultation_at_4_le_4": at4["core_pct_per_consultation"] <= 4.0 if at4 else None,
        "first_frame_p95_lt_0.5s": all((r["first_frame_p95_s"] or 99) < 0.5 for r in ours) if ours else None,
        "delivered_fps_ge_29": all((r["delivered_fps"] or 0) >= 29 for r in ours) if ours else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", default="1,4,8", type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per server and step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the last join and the window")
    parser.add_argument("--servers", default="nettlege,relay,janus", type=lambda s: [x for x in s.split(",") if x])
    parser.add_argument("--relay-max", type=int, default=1,
                        help="most consultations on the transcoding relay (at 2 it saturates its core)")
    parser.add_argument("--transport-cc", action=argparse.BooleanOptionalAction, default=True,
                        help="publishers offer transport-cc and use it when answered with it, as browsers do")
    args = parser.parse_args()
    if not set(args.servers) <= {"nettlege", "relay", "janus"} or not 1 <= args.runs <= 10:
        parser.error("--servers from nettlege,relay,janus; --runs 1..10")
    started = machine()
    (server_cpus,), load_cpus = cpu_plan(1)
    load = Worker(load_generator, load_cpus)
    runs: list[dict[str, Any]] = []
    try:
        clip = load.call("setup", timeout=120, transport_cc=args.transport_cc)
        for run in range(args.runs):
            done: set[tuple[str, int]] = set()
            for k in args.consultations:
                for kind in args.servers:
                    n = min(k, args.relay_max) if kind == "relay" else k
                    if (kind, n) in done:
                        continue  # the capped relay step, measured already in this run
                    done.add((kind, n))
                    try:
                        result = {"run": run + 1, **run_one(load, kind, n, args, server_cpus, load_cpus)}
                    except (RuntimeError, TimeoutError, OSError) as exc:  # a server that would not start, ...
                        record("media_bench", {"kind": "failed", "run": run + 1, "server": kind, "consultations": n,
                                               "error": f"{type(exc).__name__}: {exc}"})
                        load.call("close", timeout=60)
                        continue
                    runs.append(result)
                    record("media_bench", {"kind": "run", **result})
                    print(f"{kind} K={n}: {result}", file=sys.stderr, flush=True)
    finally:
        load.close()
    rows = summarise(runs)
    record("media_bench", {"kind": "summary", "clip": clip, "transport_cc": args.transport_cc, "where": {
        "server": f"one process on CPU {server_cpus} (taskset)", "load": f"1 load-generator process on {load_cpus}",
        "network": "127.0.0.1 (Janus: this machine's own non-loopback address)"},
        "goals": GOALS, "goals_met": goals(rows), "medians": rows}, started)


if __name__ == "__main__":
    main()
