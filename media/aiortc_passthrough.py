"""The one place that reaches into aiortc internals, to forward media without decoding or encoding it.

Written against aiortc 1.16.0 (aioice 0.13). aiortc has no public hook for encoded media: a receiver hands
each depayloaded, reassembled frame to a decoder thread, and a sender asks its track for decoded frames and
encodes them. Only the ends of that pipeline are replaced here, per instance, so aiortc keeps doing RTP/RTCP,
SRTP, NACK/RTX, receiver reports and retransmission history:

- receiver: its `__decoder_queue` (a `queue.Queue` read by the decoder thread) becomes a sink that hands the
  encoded frame to the SFU on the event loop; the decoder thread exits at once because the sink yields no work.
- sender: its lazily created `__encoder` is preset to a packer, so aiortc calls `encoder.pack(frame)` (its path
  for pre-encoded `av.Packet`s) and never `get_encoder()`; its `_send_keyframe` (PLI/FIR from the subscriber)
  is redirected to the SFU.
- gathering: aioice offers every non-loopback interface and no way to choose, so the connection's
  `gather_candidates` is replaced by one that binds only the configured addresses.

`tests/media/test_aiortc_passthrough.py` checks every attribute used here, so an aiortc upgrade fails loudly.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aioice import Candidate
from aioice.ice import Connection, TransportPolicy
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

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


def install_receiver_sink(receiver: RTCRtpReceiver, on_frame: FrameHandler) -> _FrameSink:
    """Route the receiver's encoded frames to `on_frame` instead of a decoder. Call before it starts."""
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        raise RuntimeError("receiver already started; install the sink from the 'track' event")
    sink = _FrameSink(on_frame)
    receiver._RTCRtpReceiver__decoder_queue = sink  # type: ignore[attr-defined]
    # aiortc holds 4 audio frames (80 ms) for its decoder; a forwarder has no decoder to smooth for.
    receiver._RTCRtpReceiver__jitter_buffer._prefetch = 0  # type: ignore[attr-defined]
    return sink


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


def restrict_gathering(pc: RTCPeerConnection, listen_ips: Sequence[str], announced_ip: str | None) -> None:
    """Gather host candidates only on `listen_ips` (all interfaces if empty) and write `announced_ip` into
    the SDP instead of the listen address. Call before every setLocalDescription (new transports appear)."""
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
            if announced_ip:
                connection._local_candidates = [_announce(c, announced_ip) for c in connection._local_candidates]

        connection.gather_candidates = gather  # type: ignore[method-assign]


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
