"""The media server process a benchmark measures: `media.Sfu` (pass-through) or the transcoding baseline,
behind a minimal signaling WebSocket (`/signal/{consultation}/{participant}`, the DESIGN.md messages after
`welcome`) and `/stats`. Prints its port on the first line of stdout. Loopback only."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import signal as signals
import socket
from dataclasses import asdict
from typing import Any

from aiohttp import WSMsgType, web

from load_tests.media_baseline import TranscodingSfu
from media import MediaConfig, MediaError, Sfu
from media.metrics import udp_receive_errors

SFU_KEY = web.AppKey("sfu", object)


async def signal(request: web.Request) -> web.WebSocketResponse:
    sfu: Any = request.app[SFU_KEY]
    consultation_id = request.match_info["consultation"]
    participant_id = request.match_info["participant"]
    ws = web.WebSocketResponse(max_msg_size=256 * 1024, heartbeat=None)
    await ws.prepare(request)

    async def send(message: dict[str, Any]) -> None:
        if not ws.closed:
            await ws.send_str(json.dumps(message))

    room = sfu.room(consultation_id)
    peer = await room.join(participant_id, "citizen", participant_id, send)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            try:
                if data["type"] == "offer":
                    await peer.handle_offer(data["sdp"], data.get("track_labels"))
                elif data["type"] == "answer":
                    await peer.handle_answer(data["sdp"])
                elif data["type"] == "candidate":
                    await peer.add_candidate(data.get("candidate"))
                elif data["type"] == "leave":
                    break
            except MediaError as exc:
                await send(exc.as_event())
    finally:
        if room.peer(participant_id) is peer:
            await room.leave(participant_id)
    return ws


async def stats(request: web.Request) -> web.Response:
    """Counters, plus what the server's receivers lost on the way from the publishers (uplink)."""
    sfu: Any = request.app[SFU_KEY]
    received = lost = 0
    for room in sfu.rooms():
        for peer in room.peers():
            for report in (await peer.pc.getStats()).values():
                if report.type == "inbound-rtp":
                    received += report.packetsReceived
                    lost += max(report.packetsLost, 0)
    return web.json_response({"pid": os.getpid(), "inbound_packets_received": received,
                              "inbound_packets_lost": lost, "udp_rcvbuf_errors": udp_receive_errors(),
                              **asdict(sfu.counters)})


def build_app(mode: str) -> web.Application:
    app = web.Application()

    async def media(app: web.Application):  # type: ignore[no-untyped-def]
        sfu = Sfu(MediaConfig(listen_ips=("127.0.0.1",))) if mode == "sfu" else TranscodingSfu()
        app[SFU_KEY] = sfu
        yield
        await sfu.close()

    app.cleanup_ctx.append(media)
    app.router.add_get("/signal/{consultation}/{participant}", signal)
    app.router.add_get("/stats", stats)
    return app


async def serve(mode: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(build_app(mode), access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["sfu", "baseline"], default="sfu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signals.signal(signals.SIGTERM, _interrupt)
    profile_path = os.environ.get("NETTLEGE_MEDIA_PROFILE")  # cProfile output, for finding hot spots
    profiler = cProfile.Profile() if profile_path else None
    try:
        if profiler:
            profiler.enable()
        asyncio.run(serve(args.mode))
    except KeyboardInterrupt:
        pass
    finally:
        if profiler and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
