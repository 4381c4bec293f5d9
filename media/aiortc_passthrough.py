"""The one place that reaches into aiortc internals, to forward media without decoding or encoding it.

Written against aiortc 1.16.0 (aioice 0.13). aiortc has no public hook for encoded media: a receiver hands
each depayloaded, reassembled frame to a decoder thread, and a sender asks its track for decoded frames and
encodes them. Only the ends of that pipeline are replaced here, per instance, so aiortc keeps doing RTP/RTCP,
SRTP, NACK/RTX, receiver reports and retransmission history:

- receiver: its `__decoder_queue` (a `queue.Queue` read by the decoder thread) becomes a sink that hands the
  encoded frame to the SFU on the event loop; the decoder thread exits at once because the sink yields no work.
  Its jitter buffer, which releases a frame only when the next one starts (one frame interval late, 33 ms of
  video) and waits for a lost packet until 512 more have arrived (seconds of frozen picture), is replaced by
  one that releases a frame at its last packet (the RTP marker bit for video; every Opus packet is a whole
  frame) and gives up on a missing packet after `MAX_GAP_WAIT_S`, asking for a keyframe.
- sender: its lazily created `__encoder` is preset to a packer, so aiortc calls `encoder.pack(frame)` (its path
  for pre-encoded `av.Packet`s) and never `get_encoder()`; its `_send_keyframe` (PLI/FIR from the subscriber)
  is redirected to the SFU.
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
import copy
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aioice import Candidate
from aioice.ice import CandidatePair, Connection, TransportPolicy
from aiortc import RTCIceParameters, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

from media.payload import EncodedFrame, H264Packer, OpusPacker, Vp8Packer

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


class _SenderPacker(Encoder):
    """What the sender believes is its encoder: it only ever packs frames that are already encoded."""

    def __init__(self, packer: Vp8Packer | OpusPacker | H264Packer,
                 on_packed: Callable[[int, int], None]) -> None:
        self._packer = packer
        self._on_packed = on_packed

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise RuntimeError("the SFU never encodes; a decoded frame reached a pass-through sender")

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        frame: EncodedFrame = packet
        payloads = self._packer.pack(frame)
        self._on_packed(len(payloads), sum(map(len, payloads)))
        return payloads, frame.timestamp


def install_sender_packer(sender: RTCRtpSender, packer: Vp8Packer | OpusPacker | H264Packer,
                          on_packed: Callable[[int, int], None],
                          on_keyframe_request: Callable[[], None]) -> None:
    """Make the sender pack encoded frames from its track as they are; route the subscriber's PLI/FIR."""
    if sender._RTCRtpSender__started:  # type: ignore[attr-defined]
        raise RuntimeError("sender already started")
    sender._RTCRtpSender__encoder = _SenderPacker(packer, on_packed)  # type: ignore[attr-defined]
    on_keyframe_request_from_remote(sender, on_keyframe_request)


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
            if receive_buffer_bytes:
                for protocol in connection._protocols:
                    sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
            if announced_ip:
                connection._local_candidates = [_announce(c, announced_ip) for c in connection._local_candidates]

        connection.gather_candidates = gather  # type: ignore[method-assign]


def make_ice_lite(pc: RTCPeerConnection) -> None:
    """Make the server's ICE agents ICE-lite (RFC 8445 section 2.5), as mediasoup's always are: they never
    dial a client's candidates, they answer its authenticated checks, and media goes only to an address that
    sent one (a peer-reflexive pair), nominated by the client, which is always controlling (it sends the first
    offer; `a=ice-lite` in our SDP says so too). A client's candidates are dropped unread, so an mDNS name is
    never resolved. Call before every setLocalDescription, with `restrict_gathering`.

    aioice 0.13 is a full agent only. Per connection: `add_remote_candidate` ignores candidates (the server
    learns addresses from checks), `_remote_candidates_expected` stays true (no candidates is not a failure;
    the check list completes when the client nominates), `check_start` for a pair made by an incoming check
    marks it succeeded instead of sending a check, and `query_consent` does nothing (the controlling client
    checks consent; a lite agent does not send requests)."""
    for connection in ice_connections(pc):
        if getattr(connection, "_nettlege_lite", False):
            continue
        connection._nettlege_lite = True  # type: ignore[attr-defined]

        async def ignore_candidate(candidate: Candidate | None) -> None:
            return None

        async def answered_check_is_valid(pair: CandidatePair, connection: Connection = connection) -> None:
            # The pair exists only because a check with our password came from its remote address.
            connection.check_state(pair, CandidatePair.State.SUCCEEDED)
            if pair.remote_nominated:
                pair.nominated = True
            connection.check_complete(pair)

        async def no_consent_checks() -> None:
            return None

        connection.add_remote_candidate = ignore_candidate  # type: ignore[method-assign]
        connection._remote_candidates_expected = lambda: True  # type: ignore[method-assign]
        connection.check_start = answered_check_is_valid  # type: ignore[method-assign]
        connection.query_consent = no_consent_checks  # type: ignore[method-assign]
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


Negotiated = dict[RTCRtpTransceiver, tuple[list[RTCRtpCodecParameters], list[Any]]]


def negotiated_parameters(pc: RTCPeerConnection) -> Negotiated:
    """Codecs and header extensions of every m-line already negotiated; take it before `createOffer()`."""
    return {t: (list(t._codecs), list(t._headerExtensions)) for t in pc.getTransceivers()
            if t.currentDirection is not None and t.mid is not None}


def _codec_key(codec: RTCRtpCodecParameters, by_pt: dict[int, RTCRtpCodecParameters]) -> tuple[Any, ...]:
    if is_rtx(codec):
        base = by_pt.get(codec.parameters.get("apt"))  # type: ignore[arg-type]
        return ("rtx", _codec_key(base, by_pt) if base is not None and not is_rtx(base) else None)
    params: tuple[str, ...] = ()
    if codec.mimeType.lower() == "video/h264":
        params = (str(codec.parameters.get("profile-level-id", "")).lower()[:2],
                  str(codec.parameters.get("packetization-mode", "0")))
    return (codec.mimeType.lower(), codec.clockRate, codec.channels or 1, params)


def keep_negotiated_numbering(pc: RTCPeerConnection, sdp: str, negotiated: Negotiated) -> str:
    """Rewrite the offer `createOffer()` just made (see the module docstring); returns the offer's SDP."""
    pt_of: dict[tuple[Any, ...], int] = {}
    key_of: dict[int, tuple[Any, ...]] = {}
    ext_id: dict[str, int] = {}
    for codecs, extensions in negotiated.values():
        by_pt = {c.payloadType: c for c in codecs}
        for codec in codecs:
            key = _codec_key(codec, by_pt)
            pt_of.setdefault(key, codec.payloadType)
            key_of.setdefault(codec.payloadType, key)
        for extension in extensions:
            ext_id.setdefault(extension.uri, extension.id)

    for transceiver in pc.getTransceivers():
        if transceiver in negotiated:
            transceiver._codecs, transceiver._headerExtensions = (list(x) for x in negotiated[transceiver])
            continue
        by_pt = {c.payloadType: c for c in transceiver._codecs}
        keys = {c.payloadType: _codec_key(c, by_pt) for c in transceiver._codecs}
        renumbered: dict[int, int] = {}
        for codec in sorted(transceiver._codecs, key=is_rtx):  # base codecs first: RTX refers to them
            key = keys[codec.payloadType]
            pt = pt_of.get(key)
            if pt is None:
                pt = codec.payloadType
                if key_of.get(pt, key) != key:  # taken by another codec in this session
                    pt = next(p for p in range(96, 128) if p not in key_of)
                pt_of[key], key_of[pt] = pt, key
            renumbered[codec.payloadType] = pt
        codecs = []
        for codec in transceiver._codecs:
            codec = copy.deepcopy(codec)  # aiortc's codec objects are shared module state
            codec.payloadType = renumbered[codec.payloadType]
            if is_rtx(codec):
                codec.parameters["apt"] = renumbered.get(codec.parameters["apt"], codec.parameters["apt"])
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
        transceiver = by_index.get(index)
        if media.kind in ("audio", "video") and transceiver is not None:
            media.rtp.codecs = list(transceiver._codecs)
            media.fmt = [c.payloadType for c in transceiver._codecs]
            media.rtp.headerExtensions = list(transceiver._headerExtensions)
    return str(description)
