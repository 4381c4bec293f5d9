"""The one place that reaches into aiortc internals, to forward media without decoding or encoding it.

Written against aiortc 1.16.0 (aioice 0.13; pyproject.toml pins both). aiortc has no public hook for RTP:
a receiver depayloads packets into frames for a decoder thread, and a sender asks its track for frames and
packs them. The SFU forwards RTP packets instead, so both ends are bypassed per instance while aiortc keeps
doing SRTP, RTCP (SR/RR), NACK/RTX and retransmission history:

- receiver (`install_rtp_tap`): `_handle_rtp_packet` is replaced by `RtpTap.handle`, which keeps aiortc's
  statistics, RTX unwrapping, NACK generation (`media.nack`, same answers, cheaper) and, for a publisher
  without transport-cc, its bitrate estimate, and hands each packet to the SFU (no depayloading, no jitter
  buffer). aiortc's own REMB to the publisher is not sent: `RtpTap.remb` sends the SFU's cap. The decoder
  thread gets a sink that ends it at once.
- the publisher's transport: SRTP datagrams are handled in aioice's datagram callback, not through its
  queue and aiortc's receive task (`install_direct_receive`); `_handle_rtp_data` parses the header only
  (`media.rtp_header`) and records transport-wide arrivals for transport-cc feedback (`media.twcc`,
  `install_fast_rtp_path`); `accept_transport_cc` puts transport-cc into the answer, which aiortc does not know.
- sender (`RtpSendPort`): packets are sent through the sender's transport with its SSRC, negotiated payload
  type and header extension ids (`RtpHeaderWriter`), recorded in its retransmission history (aiortc answers
  NACKs with RTX) and its SR counters; `send` (to learn the payload type), `_handle_rtcp_packet` (REMB) and
  `_send_keyframe` (PLI/FIR) are replaced on the instance. Its own RTP loop idles on a track that never yields.
- load generators and test clients: `install_receiver_sink` (encoded frames without decoding, through a
  jitter buffer that releases a frame at its last packet and gives up on a gap after `MAX_GAP_WAIT_S`),
  `report_bandwidth` (a subscriber that sends a chosen REMB), `on_remb_received` (REMB at a publisher),
  `lose_rtp` (a lossy link: a share of the RTP a client sends or receives dropped in its DTLS transport) and
  `send_transport_cc` (a publisher that numbers its packets transport-wide, as browsers do),
  `follow_send_codec` (a publisher that switches codec when a renegotiation changes it, as browsers do).
- gathering: aioice offers every non-loopback interface and no way to choose, so the connection's
  `gather_candidates` is replaced by one that binds only the configured addresses.
- server offers: aiortc's `createOffer()` renumbers every m-line with its own payload types and header
  extension ids, including m-lines the client negotiated with other numbers (a browser's opus is 111, aiortc's
  96). A browser then switches the numbers it sends with while the receiver started with the old ones, and
  refuses reassigned extension ids. `keep_negotiated_numbering` restores the negotiated numbers and gives new
  m-lines the same numbers for the same codecs, so one number means one codec in the whole BUNDLE.

`tests/media/test_aiortc_passthrough.py` checks every attribute used here, so an aiortc upgrade fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import socket
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any

import pylibsrtp
from aioice import Candidate
from aioice.ice import CandidatePair, Connection, StunProtocol, TransportPolicy
from aiortc import (
    RTCIceParameters,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    clock,
)
from aiortc import rtcrtpsender as aiortc_rtcrtpsender
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)
from aiortc.sdp import SessionDescription

from media.nack import NackGenerator
from media.rtp_header import LightRtpPacket, RtpHeaderWriter, parse_rtp_header
from media.twcc import TransportFeedback

log = logging.getLogger(__name__)

AIORTC_VERSION = "1.16"

FrameHandler = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class _FrameSink:
    """Stands in for the receiver's decoder queue: `put` runs on the event loop, `get` runs in the decoder
    thread and ends it at once (None is the thread's stop signal)."""

    def __init__(self, on_frame: FrameHandler) -> None:
        self._on_frame: FrameHandler | None = on_frame

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:  # the receiver stopping its decoder
            self._on_frame = None
            return
        if self._on_frame is not None:
            self._on_frame(*item)

    def get(self) -> None:
        return None

    def detach(self) -> None:
        self._on_frame = None


def install_receiver_sink(receiver: RTCRtpReceiver, on_frame: FrameHandler,
                          on_gap: Callable[[], None] | None = None) -> _FrameSink:
    """Route the receiver's encoded frames to `on_frame` instead of a decoder. Call before it starts.
    `on_gap` is called when frames were given up on (lost and not retransmitted in time)."""
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        raise RuntimeError("receiver already started; install the sink from the 'track' event")
    sink = _FrameSink(on_frame)
    receiver._RTCRtpReceiver__decoder_queue = sink  # type: ignore[attr-defined]
    # aiortc also holds 4 audio frames (80 ms) for its decoder; a forwarder has no decoder to smooth for.
    old: JitterBuffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__jitter_buffer = _ForwardingJitterBuffer(  # type: ignore[attr-defined]
        old.capacity, is_video=old._is_video, on_gap=on_gap)
    return sink


# How long a missing packet is waited for while later ones arrive: long enough for a NACK and its
# retransmission (one RTT), short enough that one lost packet does not freeze the picture for the seconds
# aiortc's own buffer would wait (until 512 packets have piled up behind it).
MAX_GAP_WAIT_S = {True: 0.3, False: 0.1}


class _ForwardingJitterBuffer(JitterBuffer):
    """aiortc's reordering and loss handling, but a frame leaves as soon as its last packet is in, and a
    packet still missing after `MAX_GAP_WAIT_S` is given up on (with a keyframe request)."""

    def __init__(self, capacity: int, is_video: bool, on_gap: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity, is_video=is_video)
        self._max_wait = MAX_GAP_WAIT_S[is_video]
        self._on_gap = on_gap
        self._clock = clock
        self._stalled_since: float | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None or self._origin is None:
            self._stalled_since = None
            return pli_flag, frame
        ahead = (packet.sequence_number - self._origin) & 0xFFFF
        if not 0 < ahead < 0x8000:
            return pli_flag, frame
        # Packets beyond the oldest one and still no frame: a frame in progress, or a gap. A frame in
        # progress completes within milliseconds; a gap lasts until its packet is retransmitted.
        now = self._clock()
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self._max_wait and self._skip_gap():
            self._stalled_since = None
            if self._on_gap is not None:
                self._on_gap()
            return pli_flag or self._is_video, self._remove_frame(packet.sequence_number)
        return pli_flag, frame

    def _skip_gap(self) -> bool:
        """Drop everything up to the first frame that starts after the first missing packet."""
        assert self._origin is not None  # `add` looks for a gap only after a packet set the origin
        packets = [self._packets[(self._origin + i) % self._capacity] for i in range(self._capacity)]
        gap = next((i for i, p in enumerate(packets) if p is None), None)
        if gap is None:
            return False
        for i in range(gap + 1, self._capacity):
            previous = packets[i - 1]
            if packets[i] is not None and (not self._is_video or (previous is not None and previous.marker)):
                self.remove(i)
                return True
        return False

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None  # aiortc's `add` looks for a frame only after a packet set the origin
        packets: list[Any] = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait for the retransmission (NACK), or for `add` to give up on it
            if timestamp is not None and packet.timestamp != timestamp:
                # The previous frame ended without a marker bit: it is complete now.
                self.remove(count)
                return JitterFrame(b"".join(p._data for p in packets), timestamp)
            timestamp = packet.timestamp
            packets.append(packet)
            if packet.marker or not self._is_video:
                self.remove(count + 1)
                return JitterFrame(b"".join(p._data for p in packets), timestamp)
        return None


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the publisher behind `receiver` for a keyframe (RTCP PLI). False if nothing was received yet."""
    sources = receiver.getSynchronizationSources()
    for source in sources:  # the media SSRC and, with RTX, the RTX SSRC: a PLI for the latter is ignored
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


# --- RTP-level forwarding -----------------------------------------------------------------------------

PacketHandler = Callable[[RtpPacket, bool], Awaitable[None]]


class RtpTap:
    """Stands in for a receiver's `_handle_rtp_packet`: keeps what aiortc does per packet for the publisher's
    sake (receiver statistics for RTCP RR, RTX unwrapping, NACK for lost packets) and hands every media
    packet to `on_packet(packet, is_video)` instead of depayloading it into a jitter buffer and a decoder.
    A publisher that numbers its packets transport-wide (transport-cc: browsers) estimates its own uplink
    from the SFU's transport feedback (`install_fast_rtp_path`); for one that does not (aiortc peers) the
    receiver's bitrate estimator runs and `upstream_bps` is its estimate, for the SFU to cap. aiortc's own
    REMB is replaced: `remb(bitrate)` sends what the SFU decides."""

    def __init__(self, receiver: RTCRtpReceiver, on_packet: PacketHandler) -> None:
        self._receiver = receiver
        self._on_packet = on_packet
        self._codecs: dict[int, RTCRtpCodecParameters] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        self._active: dict[int, Any] = receiver._RTCRtpReceiver__active_ssrc  # type: ignore[attr-defined]
        self._streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        self._rtx_ssrc: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
        self._nack: NackGenerator | None = None
        if receiver._RTCRtpReceiver__nack_generator is not None:  # type: ignore[attr-defined]
            # The same state and answers as aiortc's, without its walk over the missing set on every packet.
            self._nack = receiver._RTCRtpReceiver__nack_generator = NackGenerator()  # type: ignore[attr-defined]
        self._estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        self._is_video = receiver._RTCRtpReceiver__kind == "video"  # type: ignore[attr-defined]
        self._active_at = 0.0
        self._rtx_by_payload_type: dict[int, tuple[RTCRtpCodecParameters, bool]] = {}
        self.upstream_bps: int | None = None  # aiortc's receive-side estimate of the publisher's uplink
        self.media_ssrcs: list[int] = []

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver = self._receiver
        if not receiver._enabled:
            return
        extensions = packet.extensions
        if (self._estimator is not None and extensions.transport_sequence_number is None
                and extensions.abs_send_time is not None):
            estimate = self._estimator.add(abs_send_time=extensions.abs_send_time,
                                           arrival_time_ms=arrival_time_ms,
                                           payload_size=len(packet.payload) + packet.padding_size,
                                           ssrc=packet.ssrc)
            if estimate is not None:
                self.upstream_bps = estimate[0]
        # getSynchronizationSources (which SSRC a PLI goes to) needs this; a datetime per packet is costly,
        # four a second keep it well inside its 10 s window.
        now = arrival_time_ms / 1000
        if now - self._active_at > 0.25 or packet.ssrc not in self._active:
            self._active_at = now
            self._active[packet.ssrc] = clock.current_datetime()
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        rtx = self._rtx_by_payload_type.get(packet.payload_type)
        if rtx is None or rtx[0] is not codec:  # `codec.name` splits the MIME type: once per codec, not per packet
            rtx = self._rtx_by_payload_type[packet.payload_type] = (codec, codec.name == "rtx")
        if rtx[1]:
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in self._codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        elif packet.ssrc not in self.media_ssrcs:
            self.media_ssrcs.append(packet.ssrc)
        if self._nack is not None and self._nack.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(self._nack.missing))
        await self._on_packet(packet, self._is_video)

    async def remb(self, bitrate: int) -> None:
        """Tell the publisher the most it may send on this stream (RTCP REMB, RFC draft-alvestrand-rmcat-remb)."""
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if rtcp_ssrc is None or not self.media_ssrcs:
            return
        await self._receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                                       fci=pack_remb_fci(int(bitrate), list(self.media_ssrcs))))


TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
# How often a transport's arrivals are reported (libwebrtc's receiver: 50-250 ms, 100 by default).
TRANSPORT_FEEDBACK_INTERVAL_S = 0.1


def install_fast_rtp_path(transport: RTCDtlsTransport) -> TransportFeedback:
    """Replace the transport's `_handle_rtp_data` (after SRTP): a header-only parse (`media.rtp_header`)
    instead of aiortc's `RtpPacket.parse`, the transport-wide sequence number and arrival of every packet
    recorded for transport-cc feedback (sent every `TRANSPORT_FEEDBACK_INTERVAL_S` while packets come),
    then aiortc's routing to the receiver. Idempotent; returns the transport's feedback recorder."""
    existing: TransportFeedback | None = getattr(transport, "_nettlege_feedback", None)
    if existing is not None:
        return existing
    feedback = TransportFeedback(TRANSPORT_FEEDBACK_INTERVAL_S)
    transport._nettlege_feedback = feedback  # type: ignore[attr-defined]
    # The negotiated ids, updated in place by aiortc as m-lines are negotiated (same attribute names).
    ids: HeaderExtensions = transport._rtp_header_extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
    router = transport._rtp_router
    monotonic_ns = time.monotonic_ns

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        try:
            packet = parse_rtp_header(data, ids)  # type: ignore[arg-type]  # HeaderExtensions has the ids
        except ValueError:
            return
        receiver = router.route_rtp(packet)
        sequence = packet.extensions.transport_sequence_number
        if sequence is not None:  # every packet the browser numbered, routed or not, is reported
            now_us = monotonic_ns() // 1000
            feedback.record(sequence, now_us)
            rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc if receiver is not None else None  # type: ignore[attr-defined]
            if rtcp_ssrc is not None and feedback.due(now_us):
                for message in feedback.take_feedback(rtcp_ssrc, packet.ssrc, now_us):
                    with contextlib.suppress(ConnectionError):
                        await transport._send_rtp(message)
        if receiver is not None:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)

    transport._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    return feedback


def install_direct_receive(transport: RTCDtlsTransport) -> None:
    """Handle the transport's SRTP and SRTCP datagrams in aioice's datagram callback instead of through
    aioice's queue. aiortc reads every datagram in a task that awaits an `asyncio.Queue`: per packet a queue
    put and get, a future, a task wake-up and an extra event-loop turn (with its own epoll call) before the
    packet is even decrypted. STUN never takes this path and DTLS still goes through the queue (the
    handshake, its alerts and shutdown keep aiortc's handling); media is handled at once, as aiortc's
    receive loop would (`_recv_next`'s SRTP branch). Nothing on the forwarding path waits for anything,
    so the handling normally finishes within the callback; if it ever does wait, a task finishes it. Call
    once the transport exists; idempotent."""
    if getattr(transport, "_nettlege_direct", False):
        return
    transport._nettlege_direct = True  # type: ignore[attr-defined]
    connection: Connection = transport.transport._connection
    queued = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        srtp = transport._rx_srtp
        if srtp is None or not data or not 127 < data[0] < 192 or transport._state != DtlsState.CONNECTED:
            queued(data, component)
            return
        transport._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        transport._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        _run_now(_handle_srtp(transport, srtp, data))

    connection.data_received = data_received  # type: ignore[method-assign]


_NTP_UNIX_OFFSET_MS = 2208988800 * 1000


async def _handle_srtp(transport: RTCDtlsTransport, srtp: Any, data: bytes) -> None:
    arrival_time_ms = time.time_ns() // 1_000_000 + _NTP_UNIX_OFFSET_MS  # aiortc's clock.current_ms()
    try:
        if is_rtcp(data):
            await transport._handle_rtcp_data(srtp.unprotect_rtcp(data))
        else:
            await transport._handle_rtp_data(srtp.unprotect(data), arrival_time_ms=arrival_time_ms)
    except pylibsrtp.Error:
        pass  # as aiortc: a packet that does not decrypt is dropped
    except ConnectionError:
        pass  # sending an answer on a transport closing meanwhile; its receive loop ends it
    except Exception:
        log.exception("handling an SRTP packet failed")


@types.coroutine
def _finish(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, None, None]:
    """Lets a task carry on a coroutine that `_run_now` started and that had to wait on `waiting_on`."""
    yield waiting_on
    yield from coroutine  # a native coroutine, resumed where it waited


_finishing: set[asyncio.Future[None]] = set()


def _run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` in the current callback; if it has to wait, a task finishes it."""
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return
    task = asyncio.ensure_future(_finish(coroutine, waiting_on))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


def accept_transport_cc(pc: RTCPeerConnection, offer: str) -> None:
    """After each `setRemoteDescription` (offer or answer): keep transport-cc (the header extension and `a=rtcp-fb:...
    transport-cc`) on every m-line the client sends on and offered it for. aiortc does not know transport-cc
    and leaves both out of its answer; with them the browser estimates its uplink from the SFU's feedback
    and the SFU runs no receive-side estimator per packet. m-lines the SFU sends on get no transport-cc, so
    subscribers keep reporting REMB, which `media.bandwidth` reads."""
    media_lines = SessionDescription.parse(offer).media
    for transceiver in pc.getTransceivers():
        index = transceiver._get_mline_index()
        if index is None or index >= len(media_lines):
            continue
        media = media_lines[index]
        if media.kind != transceiver.kind or media.direction not in ("sendonly", "sendrecv"):
            continue
        extension = next((e for e in media.rtp.headerExtensions if e.uri == TRANSPORT_CC_URI), None)
        if extension is None:
            continue
        if all(e.uri != TRANSPORT_CC_URI for e in transceiver._headerExtensions):
            transceiver._headerExtensions.append(copy.copy(extension))
        offered = {c.payloadType: c for c in media.rtp.codecs}
        for codec in transceiver._codecs:
            remote = offered.get(codec.payloadType)
            if remote is not None and any(f.type == "transport-cc" for f in remote.rtcpFeedback) \
                    and all(f.type != "transport-cc" for f in codec.rtcpFeedback):
                codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))


def install_rtp_tap(receiver: RTCRtpReceiver, on_packet: PacketHandler) -> RtpTap:
    """Forward the receiver's RTP packets to `on_packet` as they arrive (after SRTP and RTX unwrapping),
    with no jitter buffer and no decoder. Call before the receiver starts (from the 'track' event)."""
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        raise RuntimeError("receiver already started; install the tap from the 'track' event")
    tap = RtpTap(receiver, on_packet)
    install_fast_rtp_path(receiver.transport)
    install_direct_receive(receiver.transport)
    install_direct_send(receiver.transport)
    # The decoder thread still starts with the receiver; a sink that yields nothing ends it at once.
    receiver._RTCRtpReceiver__decoder_queue = _FrameSink(lambda codec, frame: None)  # type: ignore[attr-defined]
    receiver._handle_rtp_packet = tap.handle  # type: ignore[method-assign]
    return tap


class RtpSendPort:
    """Sends forwarded RTP packets through an RTCRtpSender's transport as that sender's own stream: its SSRC,
    payload type and header extension ids, with a fresh abs-send-time. Each packet goes into the sender's
    retransmission history, so aiortc answers the subscriber's NACKs (with RTX), and into the counters its
    RTCP sender reports carry. The sender's own RTP loop idles on a track that never yields a frame.
    The subscriber's PLI/FIR goes to `on_keyframe_request`, its REMB (bits per second) to `on_remb`."""

    def __init__(self, sender: RTCRtpSender, on_keyframe_request: Callable[[], None],
                 on_remb: Callable[[int], None]) -> None:
        if sender._RTCRtpSender__started:  # type: ignore[attr-defined]
            raise RuntimeError("sender already started")
        self._sender = sender
        install_direct_send(sender.transport)
        self._history: dict[int, RtpPacket] = sender._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        self._extensions_map: HeaderExtensionsMap = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        self.payload_type: int | None = None
        self.fraction_lost = 0.0  # of this stream, in the subscriber's last receiver report
        # For the bandwidth policy (media.bandwidth): packets the subscriber asked again for (NACK), and the
        # round-trip time of its last receiver report (its growth is the queue on the subscriber's link).
        self.nacked = 0  # distinct packets: a NACK that asks again for one already asked for does not count
        self._nacked_newest: int | None = None
        self.rtt_s: float | None = None
        self._mid: str | None = None
        self._writer: RtpHeaderWriter | None = None
        self._on_remb = on_remb
        original_send = sender.send
        original_rtcp = sender._handle_rtcp_packet

        async def send(parameters: RTCRtpSendParameters) -> None:
            if self.payload_type is None and parameters.codecs:
                self.payload_type = parameters.codecs[0].payloadType
                self._mid = parameters.muxId
            await original_send(parameters)
            self._writer = None  # the extension ids are configured now: the next packet's header uses them

        async def handle_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if sender._ssrc in ssrcs:
                    self._on_remb(bitrate)
                return
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        self.fraction_lost = report.fraction_lost / 256
                        # Unsmoothed (aiortc's own RTT is a slow moving average), as aiortc computes it.
                        if report.dlsr and report.lsr == sender._RTCRtpSender__lsr:  # type: ignore[attr-defined]
                            sent_at = sender._RTCRtpSender__lsr_time  # type: ignore[attr-defined]
                            self.rtt_s = time.time() - sent_at - report.dlsr / 65536
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                # aiortc's receivers repeat every still-missing number in each NACK, browsers ask again after
                # a round trip: count only numbers newer than the newest asked for before.
                newest = self._nacked_newest
                for seq in packet.lost:
                    if newest is None or 0 < (seq - newest) & 0xFFFF < 0x8000:
                        self.nacked += 1
                        newest = seq
                self._nacked_newest = newest
            await original_rtcp(packet)  # RR statistics, NACK (retransmitted from the history), PLI/FIR

        sender.send = send  # type: ignore[method-assign]
        sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
        sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]

    @property
    def ready(self) -> bool:
        return self.payload_type is not None

    async def send(self, source: RtpPacket, sequence_number: int, timestamp: int) -> int:
        """Send `source`'s payload as this sender's packet `sequence_number`; returns the payload bytes sent
        (0 if the transport is not connected yet or any more)."""
        sender = self._sender
        writer = self._writer
        if writer is None:  # after the sender started: its extension ids are negotiated by then
            ids = self._extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
            # payload_type is set: the forwarder sends only once `ready` (no check here, on every packet).
            writer = self._writer = RtpHeaderWriter(self.payload_type, sender._ssrc, self._mid,  # type: ignore[arg-type]
                                                    ids.mid, ids.abs_send_time, ids.audio_level)
        ntp = _ntp_now()
        abs_send_time = (ntp >> 14) & 0x00FFFFFF  # the subscriber estimates bandwidth from it
        audio_level = source.extensions.audio_level
        payload = source.payload
        self._history[sequence_number % RTP_HISTORY_SIZE] = _SentPacket(
            self.payload_type, source.marker, sequence_number, timestamp, sender._ssrc, payload,  # type: ignore[arg-type]
            source.padding_size, self._mid, abs_send_time, audio_level)
        data = writer.write(source.marker, sequence_number, timestamp, payload, source.padding_size,
                            abs_send_time, audio_level)
        if not _send_now(sender.transport, data):
            try:
                await sender.transport._send_rtp(data)
            except ConnectionError:
                return 0
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
        size = len(payload)
        sender._RTCRtpSender__octet_count += size  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        return size


def _send_now(transport: RTCDtlsTransport, data: bytes) -> bool:
    """What `transport._send_rtp(data)` does for an RTP or RTCP packet on a connected transport whose selected
    pair is plain UDP (the server's always are: host candidates, ICE-lite), without its four coroutine layers
    (DTLS transport, ICE transport, connection, protocol). False: not sent, use `_send_rtp` (which raises
    ConnectionError when it cannot send either)."""
    srtp = transport._tx_srtp
    if srtp is None or transport._state != DtlsState.CONNECTED:
        return False
    pair = transport._transport._connection._nominated.get(1)
    route = transport.__dict__.get("_nettlege_route")
    if route is None or route[0] is not pair:  # the first packet, or ICE chose another pair: look it up again
        if pair is None or type(pair.protocol) is not StunProtocol:
            return False
        route = transport._nettlege_route = (pair, pair.protocol, pair.remote_addr)  # type: ignore[attr-defined]
    udp = route[1].transport
    if udp is None:
        return False
    protected = srtp.protect_rtcp(data) if len(data) > 1 and 191 < data[1] < 209 else srtp.protect(data)  # is_rtcp
    udp.sendto(protected, route[2])
    transport._RTCDtlsTransport__tx_bytes += len(protected)  # type: ignore[attr-defined]
    transport._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
    return True


def install_direct_send(transport: RTCDtlsTransport) -> None:
    """Every RTP and RTCP packet aiortc sends on the transport (receiver and sender reports, NACKs, REMB, PLI,
    retransmissions, transport-cc feedback) goes out by `_send_now` when it can, instead of through aiortc's
    and aioice's four coroutine layers. Idempotent."""
    if getattr(transport, "_nettlege_direct_send", False):
        return
    transport._nettlege_direct_send = True  # type: ignore[attr-defined]
    original = transport._send_rtp

    async def send_rtp(data: bytes) -> None:
        if not _send_now(transport, data):
            await original(data)

    transport._send_rtp = send_rtp  # type: ignore[method-assign]


_NTP_UNIX_OFFSET_S = 2208988800  # 1900-01-01 to 1970-01-01


def _ntp_now() -> int:
    """aiortc's `clock.current_ntp_time()` without building a datetime per packet."""
    ns = time.time_ns()
    seconds, rest = divmod(ns, 1_000_000_000)
    return ((seconds + _NTP_UNIX_OFFSET_S) << 32) | ((rest << 32) // 1_000_000_000)


_NO_CSRC: list[int] = []  # shared by every history entry: never written to


class _SentPacket(LightRtpPacket):
    """A forwarded packet as the sender's retransmission history keeps it (aiortc's `_retransmit` wraps it
    in RTX and serializes it): references only, its `HeaderExtensions` made when it is retransmitted (most
    packets never are)."""

    def __init__(self, payload_type: int, marker: int, sequence_number: int, timestamp: int, ssrc: int,
                 payload: bytes, padding_size: int, mid: str | None, abs_send_time: int,
                 audio_level: Any) -> None:
        LightRtpPacket.__init__(self, payload_type, marker, sequence_number, timestamp, ssrc, payload,
                                padding_size, _NO_CSRC)
        self._header = (mid, abs_send_time, audio_level)

    @property
    def extensions(self) -> HeaderExtensions:  # type: ignore[override]  # read only: made on demand
        mid, abs_send_time, audio_level = self._header
        return HeaderExtensions(abs_send_time=abs_send_time, audio_level=audio_level, mid=mid)


# --- test clients: what a subscriber reports, what a publisher is told ---------------------------------

class _FixedEstimator:
    """Replaces a client receiver's bitrate estimator: reports `bitrate()` every `interval_ms`."""

    def __init__(self, bitrate: Callable[[], int], interval_ms: int = 200) -> None:
        self._bitrate = bitrate
        self._interval_ms = interval_ms
        self._last_ms: int | None = None

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None:
        if self._last_ms is not None and arrival_time_ms - self._last_ms < self._interval_ms:
            return None
        self._last_ms = arrival_time_ms
        return self._bitrate(), [ssrc]


def report_bandwidth(receiver: RTCRtpReceiver, bitrate: Callable[[], int]) -> None:
    """Make an aiortc receiver (a test subscriber) send REMB `bitrate()` instead of its own estimate, as a
    subscriber behind a slow link would."""
    receiver._RTCRtpReceiver__remote_bitrate_estimator = _FixedEstimator(bitrate)  # type: ignore[attr-defined]


class _ResyncingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, behaving on loss as a browser's does: a keyframe makes everything older
    obsolete (aiortc's holds a hole nobody retransmits until 512 packets pile up behind it: seconds of frozen
    picture), and a hole still open after `wait_s` asks for a keyframe (PLI, through the receiver)."""

    def __init__(self, capacity: int, keyframe_start: Callable[[bytes], bool], wait_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity, is_video=True)
        self._keyframe_start = keyframe_start
        self._wait_s = wait_s
        self._clock = clock
        self._stuck_since: float | None = None
        self._asked_at = 0.0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        origin = self._origin
        if origin is not None and self._keyframe_start(packet.payload):
            ahead = (packet.sequence_number - origin) & 0xFFFF
            if 0 < ahead < self._capacity and any(
                    self._packets[(origin + i) % self._capacity] is None for i in range(ahead)):
                self.remove(ahead)  # what is older cannot be decoded any more: start at the keyframe
        pli_flag, frame = super().add(packet)
        if frame is not None or self._origin is None:
            self._stuck_since = None
            return pli_flag, frame
        now = self._clock()
        if self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since >= self._wait_s and now - self._asked_at >= self._wait_s:
            self._asked_at = now
            pli_flag = True
        return pli_flag, frame


def resync_on_keyframes(receiver: RTCRtpReceiver, keyframe_start: Callable[[bytes], bool]) -> None:
    """Give a decoding test client's video receiver a browser's behaviour on unrepaired loss (see
    `_ResyncingJitterBuffer`); `keyframe_start(payload)` tells a keyframe's first packet (media.rtp)."""
    old: JitterBuffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    if old._is_video and not isinstance(old, _ResyncingJitterBuffer):
        receiver._RTCRtpReceiver__jitter_buffer = _ResyncingJitterBuffer(  # type: ignore[attr-defined]
            old.capacity, keyframe_start)


class RtpLoss:
    """A share of a test client's RTP packets dropped on one side of its transport, as a lossy link would
    (this kernel has no netem). RTCP, ICE and DTLS pass. `dropped` and `passed` count RTP packets."""

    def __init__(self, fraction: float, seed: int) -> None:
        self.fraction = fraction
        self.dropped = self.passed = 0
        self._random = random.Random(seed)

    def drop(self) -> bool:
        if self._random.random() < self.fraction:
            self.dropped += 1
            return True
        self.passed += 1
        return False


def lose_rtp(pc: RTCPeerConnection, loss: RtpLoss, *, outgoing: bool) -> None:
    """Drop `loss.fraction` of the RTP a test client sends (`outgoing`) or receives, after SRTP/before it
    (the packet never reaches the wire, or never reaches the receiver). Call after every
    setLocalDescription: transports appear with the m-lines; one already wrapped is left alone."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.sender.transport
        if transport is None or getattr(transport, "_nettlege_loss", None) is not None:
            continue
        transport._nettlege_loss = loss  # type: ignore[attr-defined]
        if outgoing:
            send = transport._send_rtp

            async def lossy_send(data: bytes, send: Any = send) -> None:
                if is_rtcp(data) or not loss.drop():
                    await send(data)

            transport._send_rtp = lossy_send  # type: ignore[method-assign]
        else:
            handle = transport._handle_rtp_data

            async def lossy_handle(data: bytes, arrival_time_ms: int, handle: Any = handle) -> None:
                if not loss.drop():
                    await handle(data, arrival_time_ms)

            transport._handle_rtp_data = lossy_handle  # type: ignore[method-assign]


class TransportCcClient:
    """A test or load client that does what a browser does for transport-cc on what it sends: offers the
    header extension and `a=rtcp-fb:* transport-cc` (aiortc offers neither), and when the answer accepts
    them numbers every RTP packet it sends transport-wide. aiortc has no send-side estimator, so the
    feedback that comes back is only collected (`feedback`: the raw RTCP messages), not acted on; the
    client's encoder keeps following REMB. See `send_transport_cc`."""

    EXTENSION_ID = 5  # free in aiortc's own numbering (mid 1, audio level 2, abs-send-time 3)

    def __init__(self) -> None:
        self.enabled = False  # the answer accepted transport-cc
        self.sent = 0
        self.feedback: list[bytes] = []
        self._sequence = 0

    def offer(self, sdp: str) -> str:
        description = SessionDescription.parse(sdp)
        for media in description.media:
            if media.kind not in ("audio", "video") or media.direction not in ("sendonly", "sendrecv"):
                continue
            if all(e.uri != TRANSPORT_CC_URI for e in media.rtp.headerExtensions):
                media.rtp.headerExtensions.append(RTCRtpHeaderExtensionParameters(
                    id=self.EXTENSION_ID, uri=TRANSPORT_CC_URI))
            for codec in media.rtp.codecs:
                if not is_rtx(codec) and all(f.type != "transport-cc" for f in codec.rtcpFeedback):
                    codec.rtcpFeedback = [*codec.rtcpFeedback, RTCRtcpFeedback(type="transport-cc")]
        return str(description)

    def answered(self, sdp: str) -> None:
        self.enabled = any(e.uri == TRANSPORT_CC_URI and e.id == self.EXTENSION_ID
                           for m in SessionDescription.parse(sdp).media for e in m.rtp.headerExtensions)

    def stamp(self, data: bytes) -> bytes:
        """`data` (one RTP packet before SRTP) with the next transport-wide sequence number."""
        sequence = self._sequence
        self._sequence = (sequence + 1) & 0xFFFF
        self.sent += 1
        element = bytes(((self.EXTENSION_ID << 4) | 1, sequence >> 8, sequence & 0xFF))
        pos = 12 + 4 * (data[0] & 0x0F)
        if not data[0] & 0x10:
            block = element + b"\x00"
            return bytes((data[0] | 0x10,)) + data[1:pos] + b"\xbe\xde\x00\x01" + block + data[pos:]
        if data[pos:pos + 2] != b"\xbe\xde":
            return data  # the two-byte form: aiortc never writes it
        length = int.from_bytes(data[pos + 2:pos + 4], "big") * 4
        block = data[pos + 4:pos + 4 + length]
        end = i = 0
        while i < len(block):  # after the last element (trailing zeros may be a value's)
            if block[i] == 0:
                i += 1
                continue
            i += 2 + (block[i] & 0x0F)
            end = i
        block = block[:end] + element
        block += b"\x00" * (-len(block) % 4)
        return data[:pos] + b"\xbe\xde" + (len(block) // 4).to_bytes(2, "big") + block + data[pos + 4 + length:]


def send_transport_cc(pc: RTCPeerConnection) -> TransportCcClient:
    """Make an aiortc client offer transport-cc and, once answered with it, number what it sends, as a
    browser does (see `TransportCcClient`). Call before its first `createOffer`; the client's offers must
    come from `pc.createOffer()` and its answers reach `pc.setRemoteDescription`, which are wrapped."""
    client = TransportCcClient()
    create_offer, create_answer = pc.createOffer, pc.createAnswer
    set_remote = pc.setRemoteDescription

    async def offer() -> RTCSessionDescription:
        made = await create_offer()
        for transceiver in pc.getTransceivers():
            _number_what_it_sends(transceiver.sender.transport, client)
        return RTCSessionDescription(sdp=client.offer(made.sdp), type="offer")

    async def answer() -> RTCSessionDescription:
        # A browser keeps what was negotiated when it answers the SFU's later offers (new subscriptions);
        # aiortc's answer would leave transport-cc out, and the SFU would drop it from the m-lines.
        made = await create_answer()
        return RTCSessionDescription(sdp=client.offer(made.sdp) if client.enabled else made.sdp, type="answer")

    async def remote(sessionDescription: RTCSessionDescription) -> None:  # aiortc's name
        if sessionDescription.type == "answer":
            client.answered(sessionDescription.sdp)
        await set_remote(sessionDescription)

    pc.createOffer = offer  # type: ignore[method-assign]
    pc.createAnswer = answer  # type: ignore[method-assign]
    pc.setRemoteDescription = remote  # type: ignore[method-assign]
    return client


def _number_what_it_sends(transport: RTCDtlsTransport, client: TransportCcClient) -> None:
    if getattr(transport, "_nettlege_transport_cc", None) is not None:
        return
    transport._nettlege_transport_cc = client  # type: ignore[attr-defined]
    send, handle_rtcp = transport._send_rtp, transport._handle_rtcp_data

    async def numbered_send(data: bytes) -> None:
        if client.enabled and not is_rtcp(data):
            data = client.stamp(data)
        await send(data)

    async def collect_feedback(data: bytes) -> None:
        if len(data) >= 2 and data[1] == 205 and data[0] & 0x1F == 15:
            client.feedback.append(data)
            return  # aiortc cannot read it (nor act on it)
        await handle_rtcp(data)

    transport._send_rtp = numbered_send  # type: ignore[method-assign]
    transport._handle_rtcp_data = collect_feedback  # type: ignore[method-assign]


def on_remb_received(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bitrate)` for every REMB that reaches an aiortc sender (a test publisher), which still
    lowers its encoder's bitrate on it."""
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if sender._ssrc in ssrcs:
                    callback(bitrate)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def set_opus_bitrate(sender: RTCRtpSender, bitrate: int) -> None:
    """Make an aiortc audio sender (a test publisher) encode Opus at `bitrate` instead of aiortc's 96 kbit/s,
    as a browser sends voice (~32 kbit/s). Call before it starts."""
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    encoder.codec.bit_rate = bitrate  # the codec opens on the first frame, with this rate
    sender._RTCRtpSender__encoder = encoder  # type: ignore[attr-defined]


def encoder_target_bitrate(sender: RTCRtpSender) -> int | None:
    """What an aiortc sender's live encoder currently aims at (None before it encoded a frame)."""
    encoder = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
    return getattr(encoder, "target_bitrate", None)


def sending_codec(sender: RTCRtpSender) -> RTCRtpCodecParameters | None:
    """The codec an aiortc sender's RTP loop sends with (None before it started or after it ended)."""
    frame = _rtp_loop_frame(sender)
    codec = frame.f_locals.get("codec") if frame is not None else None
    return codec if isinstance(codec, RTCRtpCodecParameters) else None


def _rtp_loop_frame(sender: RTCRtpSender) -> Any:
    """The frame of the sender's running `_run_rtp` (its locals: codec, sequence_number, timestamp_origin)."""
    task = sender._RTCRtpSender__rtp_task  # type: ignore[attr-defined]
    if task is None or task.done():
        return None
    coroutine = task.get_coro()
    frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
    if frame is not None and frame.f_code.co_name == "_carry_on":  # restarted by follow_send_codec
        inner = frame.f_locals.get("coroutine")
        frame = getattr(inner, "cr_frame", None)
    return frame


async def follow_send_codec(transceiver: RTCRtpTransceiver) -> bool:
    """Test clients: a browser sends with the first codec of the m-line's latest negotiation (the SFU offers a
    publisher VP8 only when a participant cannot decode H264); aiortc's sender keeps the codec it started
    with. Call after applying a description: if the codec changed, the sender's RTP loop is restarted with
    the new one (new encoder, a keyframe first; same SSRC, new sequence numbers and timestamps). Its track
    goes on. Returns whether it switched."""
    sender = transceiver.sender
    running = sending_codec(sender)
    codec = negotiated_codec(transceiver)
    if running is None or codec is None or (running.mimeType.lower(), running.payloadType) == (
            codec.mimeType.lower(), codec.payloadType):
        return False
    frame = _rtp_loop_frame(sender)
    _rtp_numbers[sender] = (frame.f_locals["sequence_number"], frame.f_locals["timestamp_origin"])
    task = sender._RTCRtpSender__rtp_task  # type: ignore[attr-defined]
    track = sender._RTCRtpSender__track  # type: ignore[attr-defined]
    sender._RTCRtpSender__track = None  # type: ignore[attr-defined]  # the ending loop stops its track: not ours
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    sequence_number, timestamp_origin = _rtp_numbers.pop(sender)
    sender._RTCRtpSender__rtp_exited.clear()  # type: ignore[attr-defined]  # `stop()` waits for the new loop
    sender._RTCRtpSender__rtx_payload_type = next(  # type: ignore[attr-defined]
        (c.payloadType for c in transceiver._codecs if is_rtx(c) and c.parameters.get("apt") == codec.payloadType),
        None)
    sender._RTCRtpSender__track = track  # type: ignore[attr-defined]
    # The new loop goes on with the stream's sequence numbers (SRTP refuses to protect an index it has passed)
    # and timestamps: it draws both from these two functions before its first wait.
    loop = sender._run_rtp(codec)
    module = vars(aiortc_rtcrtpsender)
    drawn = (module["random_sequence_number"], module["random32"])
    module["random_sequence_number"], module["random32"] = (lambda: sequence_number), (lambda: timestamp_origin)
    try:
        waiting_on = loop.send(None)
    finally:
        module["random_sequence_number"], module["random32"] = drawn
    sender._RTCRtpSender__rtp_task = asyncio.ensure_future(_carry_on(loop, waiting_on))  # type: ignore[attr-defined]
    return True


# Where a sender's RTP loop was when `follow_send_codec` stopped it: (next sequence number, timestamp origin).
_rtp_numbers: dict[RTCRtpSender, tuple[int, int]] = {}


@types.coroutine
def _carry_on(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """A task's body for a coroutine already started by hand: what the task sends or throws (a cancel)
    goes on to the coroutine, also at the wait it was started into."""
    while True:
        try:
            value = yield waiting_on
        except BaseException as exc:  # CancelledError and the like: the coroutine handles them
            try:
                waiting_on = coroutine.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coroutine.send(value)
            except StopIteration:
                return


def on_keyframe_request_from_remote(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side sends PLI or FIR for this sender's stream."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def set_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """The msid ("<stream id> <track id>") the subscriber sees in the next offer; aiortc uses one random
    stream id per peer connection and fixes the track id when the track is set."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The first non-RTX codec negotiated on this transceiver (what the remote side sends with)."""
    codecs: Sequence[RTCRtpCodecParameters] = transceiver._codecs
    return next((c for c in codecs if not is_rtx(c)), None)


def ice_connections(pc: RTCPeerConnection) -> Iterable[Connection]:
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if id(connection) not in seen:
            seen.add(id(connection))
            yield connection


def restrict_gathering(pc: RTCPeerConnection, listen_ips: Sequence[str], announced_ip: str | None,
                       receive_buffer_bytes: int | None = None) -> None:
    """Gather host candidates only on `listen_ips` (all interfaces if empty) and write `announced_ip` into
    the SDP instead of the listen address. Call before every setLocalDescription (new transports appear).
    `receive_buffer_bytes` enlarges the sockets' receive buffers (aioice asks for 256 KiB; the kernel caps
    it at net.core.rmem_max), so a busy event loop loses fewer datagrams."""
    for connection in ice_connections(pc):
        if getattr(connection, "_nettlege_restricted", False) or connection._local_candidates_start:
            continue
        connection._nettlege_restricted = True  # type: ignore[attr-defined]
        original = connection.gather_candidates

        async def gather(connection: Connection = connection, original: Any = original) -> None:
            if listen_ips and connection._transport_policy == TransportPolicy.ALL:
                connection._local_candidates_start = True
                results = await asyncio.gather(*(
                    connection.get_component_candidates(component=c, addresses=list(listen_ips))
                    for c in connection._components))
                for candidates in results:
                    connection._local_candidates += candidates
                connection._local_candidates_end = True
            else:
                await original()
            for protocol in connection._protocols:
                _media_first(protocol)
            if receive_buffer_bytes:
                for protocol in connection._protocols:
                    sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
            if announced_ip:
                connection._local_candidates = [_announce(c, announced_ip) for c in connection._local_candidates]

        connection.gather_candidates = gather  # type: ignore[method-assign]


def _media_first(protocol: Any) -> None:
    """aioice parses every datagram as STUN first and hands it on when that fails (a ValueError raised and
    caught per RTP packet). A first byte of 128-191 is RTP or RTCP, never STUN (RFC 7983): hand it on at once."""
    if not isinstance(protocol, StunProtocol) or "datagram_received" in vars(protocol):
        return
    parse_first = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:  # a UDP protocol gets bytes
        if data and 127 < data[0] < 192:
            protocol.receiver.data_received(data, protocol.local_candidate.component)
        else:
            parse_first(data, addr)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign, assignment]


# Like mediasoup's iceConsentTimeout: a client whose checks stopped this long has withdrawn consent.
CONSENT_TIMEOUT_S = 30.0


def make_ice_lite(pc: RTCPeerConnection) -> None:
    """Make the server's ICE agents ICE-lite (RFC 8445 section 2.5), as mediasoup's always are: they never
    dial a client's candidates, they answer its authenticated checks, and media goes only to an address that
    sent one (a peer-reflexive pair), nominated by the client, which is always controlling (it sends the first
    offer; `a=ice-lite` in our SDP says so too). A client's candidates are dropped unread, so an mDNS name is
    never resolved. Call before every setLocalDescription, with `restrict_gathering`.

    aioice 0.13 is a full agent only. Per connection: `add_remote_candidate` ignores candidates (the server
    learns addresses from checks), `_remote_candidates_expected` stays true (no candidates is not a failure;
    the check list completes when the client nominates), `check_start` for a pair made by an incoming check
    marks it succeeded instead of sending a check, `check_incoming` notes when the last check came, and
    `query_consent` sends nothing (a lite agent sends no requests) but closes the connection when the
    client's checks, its consent (RFC 7675), stopped `CONSENT_TIMEOUT_S` ago."""
    for connection in ice_connections(pc):
        if getattr(connection, "_nettlege_lite", False):
            continue
        connection._nettlege_lite = True  # type: ignore[attr-defined]

        async def ignore_candidate(remote_candidate: Candidate | None) -> None:
            return None

        async def answered_check_is_valid(pair: CandidatePair, connection: Connection = connection) -> None:
            # The pair exists only because a check with our password came from its remote address.
            connection.check_state(pair, CandidatePair.State.SUCCEEDED)
            if pair.remote_nominated:
                pair.nominated = True
            connection.check_complete(pair)

        original_check_incoming = connection.check_incoming

        def check_incoming(message: Any, addr: tuple[str, int], protocol: Any,
                           connection: Connection = connection, original: Any = original_check_incoming) -> None:
            connection._nettlege_consent_at = time.monotonic()  # type: ignore[attr-defined]
            original(message, addr, protocol)

        async def consent_from_client_checks(connection: Connection = connection) -> None:
            # RFC 7675 for a lite agent: the client's checks (browsers send one every few seconds) are its
            # consent. Without one for CONSENT_TIMEOUT_S, stop sending: close, as aioice does on expiry.
            while True:
                await asyncio.sleep(min(5.0, CONSENT_TIMEOUT_S / 4))
                if time.monotonic() - connection._nettlege_consent_at > CONSENT_TIMEOUT_S:  # type: ignore[attr-defined]
                    connection._query_consent_task = None
                    await connection.close()
                    return

        connection._nettlege_consent_at = time.monotonic()  # type: ignore[attr-defined]
        connection.add_remote_candidate = ignore_candidate  # type: ignore[method-assign]
        connection._remote_candidates_expected = lambda: True  # type: ignore[method-assign]
        connection.check_start = answered_check_is_valid  # type: ignore[method-assign]
        connection.check_incoming = check_incoming  # type: ignore[method-assign]
        connection.query_consent = consent_from_client_checks  # type: ignore[method-assign]
        gatherer = next(t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()
                        if t.receiver.transport.transport.iceGatherer._connection is connection)
        gatherer.getLocalParameters = _lite_parameters(gatherer.getLocalParameters)  # type: ignore[method-assign]


def _lite_parameters(original: Callable[[], RTCIceParameters]) -> Callable[[], RTCIceParameters]:
    def parameters() -> RTCIceParameters:
        local = original()
        local.iceLite = True  # createOffer/createAnswer write `a=ice-lite`
        return local
    return parameters


def _announce(candidate: Candidate, announced_ip: str) -> Candidate:
    if candidate.type != "host":
        return candidate
    announced = copy.copy(candidate)  # the protocol keeps the real one for connectivity checks
    announced.host = announced_ip
    return announced


def keep_codecs(transceiver: RTCRtpTransceiver, mime_types: Sequence[str]) -> None:
    """Drop negotiated codecs the SFU cannot forward (e.g. G.722, PCMU), so the answer does not offer them."""
    kept = [c for c in transceiver._codecs if c.mimeType.lower() in mime_types]
    base_types = {c.payloadType for c in kept}
    kept += [c for c in transceiver._codecs if is_rtx(c) and c.parameters.get("apt") in base_types]
    transceiver._codecs = kept


def keep_only(transceiver: RTCRtpTransceiver, mime_type: str) -> None:
    """Answer with `mime_type` (and its RTX) only, if the client offered it: it then sends nothing else."""
    if any(c.mimeType.lower() == mime_type for c in transceiver._codecs):
        keep_codecs(transceiver, (mime_type,))


Negotiated = dict[RTCRtpTransceiver, tuple[list[RTCRtpCodecParameters], list[Any]]]


def negotiated_parameters(pc: RTCPeerConnection) -> Negotiated:
    """Codecs and header extensions of every m-line already negotiated; take it before `createOffer()`."""
    return {t: (list(t._codecs), list(t._headerExtensions)) for t in pc.getTransceivers()
            if t.currentDirection is not None and t.mid is not None}


def _codec_key(codec: RTCRtpCodecParameters, by_pt: dict[int, RTCRtpCodecParameters]) -> tuple[Any, ...]:
    if is_rtx(codec):
        apt = codec.parameters.get("apt")
        base = by_pt.get(apt) if isinstance(apt, int) else None
        return ("rtx", _codec_key(base, by_pt) if base is not None and not is_rtx(base) else None)
    params: tuple[str, ...] = ()
    if codec.mimeType.lower() == "video/h264":
        params = (str(codec.parameters.get("profile-level-id", "")).lower()[:2],
                  str(codec.parameters.get("packetization-mode", "0")))
    return (codec.mimeType.lower(), codec.clockRate, codec.channels or 1, params)


def _payload_type(codec: RTCRtpCodecParameters) -> int:
    """A negotiated codec's payload type (aiortc's type allows None, for a capability not yet numbered)."""
    assert codec.payloadType is not None  # aiortc numbers every codec it puts on a transceiver
    return codec.payloadType


def keep_negotiated_numbering(pc: RTCPeerConnection, sdp: str, negotiated: Negotiated) -> str:
    """Rewrite the offer `createOffer()` just made (see the module docstring); returns the offer's SDP."""
    pt_of: dict[tuple[Any, ...], int] = {}
    key_of: dict[int, tuple[Any, ...]] = {}
    ext_id: dict[str, int] = {}
    for codecs, extensions in negotiated.values():
        by_pt = {_payload_type(c): c for c in codecs}
        for codec in codecs:
            key = _codec_key(codec, by_pt)
            pt_of.setdefault(key, _payload_type(codec))
            key_of.setdefault(_payload_type(codec), key)
        for extension in extensions:
            ext_id.setdefault(extension.uri, extension.id)

    for transceiver in pc.getTransceivers():
        if transceiver in negotiated:
            transceiver._codecs, transceiver._headerExtensions = (list(x) for x in negotiated[transceiver])
            continue
        by_pt = {_payload_type(c): c for c in transceiver._codecs}
        keys = {_payload_type(c): _codec_key(c, by_pt) for c in transceiver._codecs}
        renumbered: dict[int, int] = {}
        for codec in sorted(transceiver._codecs, key=is_rtx):  # base codecs first: RTX refers to them
            key = keys[_payload_type(codec)]
            pt = pt_of.get(key)
            if pt is None:
                pt = _payload_type(codec)
                if key_of.get(pt, key) != key:  # taken by another codec in this session
                    pt = next(p for p in range(96, 128) if p not in key_of)
                pt_of[key], key_of[pt] = pt, key
            renumbered[_payload_type(codec)] = pt
        codecs = []
        for codec in transceiver._codecs:
            if renumbered[_payload_type(codec)] in (c.payloadType for c in codecs):
                continue  # two variants of one codec (aiortc's two H264 profiles) took one number: list it once
            codec = copy.deepcopy(codec)  # aiortc's codec objects are shared module state
            codec.payloadType = renumbered[_payload_type(codec)]
            if is_rtx(codec):
                apt = codec.parameters["apt"]
                codec.parameters["apt"] = renumbered.get(apt, apt) if isinstance(apt, int) else apt
            codecs.append(codec)
        transceiver._codecs = codecs
        extensions = []
        for extension in transceiver._headerExtensions:
            if extension.uri not in ext_id:
                ext_id[extension.uri] = next(i for i in range(1, 15) if i not in ext_id.values())
            extension = copy.copy(extension)
            extension.id = ext_id[extension.uri]
            extensions.append(extension)
        transceiver._headerExtensions = extensions

    description = SessionDescription.parse(sdp)
    # New transceivers get their mid only in setLocalDescription; createOffer has set every m-line index.
    by_index = {t._get_mline_index(): t for t in pc.getTransceivers()}
    for index, media in enumerate(description.media):
        owner = by_index.get(index)
        if media.kind in ("audio", "video") and owner is not None:
            media.rtp.codecs = list(owner._codecs)
            media.fmt = [c.payloadType for c in owner._codecs]
            media.rtp.headerExtensions = list(owner._headerExtensions)
    return str(description)
