"""The per-packet stages this SFU replaced in aiortc's receive and send path, replayed in one process without
sockets, so that an instruction counter (valgrind's callgrind: this machine's perf has no hardware counters)
gives repeatable figures on a noisy machine.

    .venv/bin/python -m load_tests.packet_path_bench --path aiortc --packets 5000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -m load_tests.packet_path_bench \\
        --path nettlege --packets 5000      # and --packets 0: the difference / 5000 is instructions per packet

A stream of VP8-sized RTP packets (~1,100 bytes, mid + abs-send-time + transport-wide sequence number, 1 in
200 lost) goes through, per packet:
- `aiortc` (the path before): the datagram handed from aioice's callback to the DTLS transport's receive task
  through an `asyncio.Queue`, `RtpPacket.parse`, the receive-side bitrate estimator, aiortc's NACK generator,
  the RTCP receiver statistics, and on the way out a new `RtpPacket` serialized with the sender's extension
  map (with a datetime-based NTP time);
- `nettlege` (this SFU now): the datagram handled in the callback (`_run_now`), the header-only parse, the
  transport-cc arrival record (and a feedback message every 100 ms of the stream), `media.nack`, the same
  receiver statistics, and `RtpHeaderWriter` with the history entry `_SentPacket`.
SRTP, sockets and the SFU's own fan-out are not replayed (nor is the send port's shortcut past aioice's
coroutine layers to the socket, `_send_now`, nor the event-loop turn the direct receive saves: both paths take
one loop turn per packet here, so the figure for `nettlege` is an upper bound). Prints the CPU time per packet
as well (noisy; the instruction count is the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from aiortc import clock
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import NackGenerator as AiortcNackGenerator
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensionsMap, RtpPacket

from media.aiortc_passthrough import TRANSPORT_CC_URI, _ntp_now, _run_now, _SentPacket
from media.nack import NackGenerator
from media.rtp_header import RtpHeaderWriter, parse_rtp_header
from media.twcc import TransportFeedback

EXTENSIONS = [RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
              RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
              RTCRtpHeaderExtensionParameters(id=5, uri=TRANSPORT_CC_URI)]


def extensions_map() -> HeaderExtensionsMap:
    result = HeaderExtensionsMap()
    result.configure(RTCRtpParameters(headerExtensions=EXTENSIONS))
    return result


def stream(count: int) -> list[tuple[bytes, int]]:
    """(packet, arrival µs): 30 frames a second of ~9.5 packets, 1 in 200 lost on the way."""
    rng = random.Random(7)
    out = []
    seq, ts, at = 1000, 90_000, 10**9
    outgoing = extensions_map()
    for i in range(count):
        packet = RtpPacket(payload_type=96, marker=int(i % 10 == 9), sequence_number=seq & 0xFFFF,
                           timestamp=ts & 0xFFFFFFFF, ssrc=0x1234, payload=rng.randbytes(1100))
        packet.extensions.mid = "0"
        packet.extensions.abs_send_time = (at * 262 // 1000) & 0xFFFFFF  # 6.18 fixed point seconds
        packet.extensions.transport_sequence_number = i & 0xFFFF
        seq += 1
        at += 3500
        if i % 10 == 9:
            ts += 3000
        if rng.random() >= 0.005:
            out.append((packet.serialize(outgoing), at))
    return out


async def aiortc_path(packets: list[tuple[bytes, int]]) -> None:
    incoming, outgoing = extensions_map(), extensions_map()
    estimator, nack, statistics = RemoteBitrateEstimator(), AiortcNackGenerator(), StreamStatistics(90000)
    history: dict[int, RtpPacket] = {}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    sent = 0

    async def receive_loop() -> None:  # the DTLS transport's task, reading what aioice queued
        nonlocal sent
        while True:
            data = await queue.get()
            packet = RtpPacket.parse(data, incoming)
            estimator.add(abs_send_time=packet.extensions.abs_send_time, arrival_time_ms=clock.current_ms(),
                          payload_size=len(packet.payload), ssrc=packet.ssrc)
            statistics.add(packet)
            if nack.add(packet):
                sorted(nack.missing)
            out = RtpPacket(payload_type=97, marker=packet.marker, sequence_number=packet.sequence_number,
                            timestamp=packet.timestamp, ssrc=0x5678, payload=packet.payload)
            ntp = clock.current_ntp_time()
            out.extensions.abs_send_time = (ntp >> 14) & 0xFFFFFF
            out.extensions.mid = "1"
            history[out.sequence_number % RTP_HISTORY_SIZE] = out
            sent += len(out.serialize(outgoing))

    task = asyncio.create_task(receive_loop())
    for data, _ in packets:
        queue.put_nowait(data)  # aioice's datagram callback
        await asyncio.sleep(0)  # the next loop turn: the receive task runs
    task.cancel()
    print(f"sent {sent} bytes")


async def nettlege_path(packets: list[tuple[bytes, int]]) -> None:
    ids = extensions_map()._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
    feedback, nack, statistics = TransportFeedback(), NackGenerator(), StreamStatistics(90000)
    writer = RtpHeaderWriter(97, 0x5678, "1", 1, 3, None)
    history: dict[int, RtpPacket] = {}
    sent = 0
    reports = 0

    async def handle(data: bytes, arrival_us: int) -> None:
        nonlocal sent, reports
        packet = parse_rtp_header(data, ids)
        sequence = packet.extensions.transport_sequence_number
        if sequence is not None:
            feedback.record(sequence, arrival_us)
            if feedback.due(arrival_us):
                reports += len(feedback.take_feedback(1, packet.ssrc, arrival_us))
        statistics.add(packet)
        if nack.add(packet):
            sorted(nack.missing)
        ntp = _ntp_now()
        abs_send_time = (ntp >> 14) & 0xFFFFFF
        history[packet.sequence_number % RTP_HISTORY_SIZE] = _SentPacket(
            97, packet.marker, packet.sequence_number, packet.timestamp, 0x5678, packet.payload, 0, "1",
            abs_send_time, None)
        sent += len(writer.write(packet.marker, packet.sequence_number, packet.timestamp, packet.payload, 0,
                                 abs_send_time, None))

    for data, arrival_us in packets:
        _run_now(handle(data, arrival_us))  # in aioice's datagram callback
        await asyncio.sleep(0)  # the same loop turns as the other path, so only the handling differs
    print(f"sent {sent} bytes, {reports} transport-cc reports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=("aiortc", "nettlege", "none"), required=True)
    parser.add_argument("--packets", type=int, default=5000)
    args = parser.parse_args()
    packets = stream(args.packets)
    path: Any = {"aiortc": aiortc_path, "nettlege": nettlege_path}.get(args.path)
    started = time.process_time()
    if path is not None:
        asyncio.run(path(packets))
    elapsed = time.process_time() - started
    print(f"{args.path}: {len(packets)} packets, {1e6 * elapsed / max(1, len(packets)):.1f} µs CPU per packet")


if __name__ == "__main__":
    main()
