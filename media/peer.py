"""One participant's RTCPeerConnection: the client's offers (what it publishes) and the server's offers
(what it subscribes to), with the server as the impolite peer that never has two offers outstanding."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media import aiortc_passthrough as passthrough
from media.bandwidth import Congestion, SubscriberBandwidth
from media.config import MediaConfig
from media.errors import MediaError
from media.forwarder import TrackForwarder
from media.ice import rtc_configuration, strip_candidates
from media.publisher import PublishedTrack
from media.sdp import accept_declined, bundle_setup, decodes_h264
from media.stats import ParticipantStats, SfuCounters

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
TracksChanged = Callable[["Peer", list[PublishedTrack], list[PublishedTrack]], Awaitable[None]]
Unanswered = Callable[[], Awaitable[None]]
LacksH264 = Callable[["Peer"], Awaitable[None]]


async def _nothing(peer: Peer) -> None:
    return None


class Timer(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Timer]  # the shape of loop.call_later

DEFAULT_LABELS = {"audio": "microphone", "video": "camera"}
FORWARDABLE = ("audio/opus", "video/vp8", "video/h264")


@dataclass
class _Subscription:
    forwarder: TrackForwarder
    transceiver: RTCRtpTransceiver | None = None  # None until the next server offer adds it


class Peer:
    """Created by `Room.join`; the signaling adapter calls `handle_offer`, `handle_answer`, `add_candidate`."""

    def __init__(self, *, participant_id: str, role: str, display_name: str, send: Send,
                 config: MediaConfig, counters: SfuCounters, on_tracks_changed: TracksChanged) -> None:
        self.participant_id = participant_id
        self.role = role
        self.display_name = display_name
        self.stats = ParticipantStats()
        self.bandwidth = SubscriberBandwidth(config)
        self._send_message = send
        self._config = config
        self._counters = counters
        self._on_tracks_changed = on_tracks_changed
        self.pc = RTCPeerConnection(rtc_configuration(config.ice_servers))
        counters.peer_connections_opened += 1
        self.published: dict[str, PublishedTrack] = {}  # by mid
        self._slots: list[_Subscription] = []  # every subscriber m-line, bound to a track or free
        self._subscriptions: dict[str, _Subscription] = {}  # bound slots by published track id
        self._lock = asyncio.Lock()
        self._first_offer_answered = False
        self._offer_outstanding = False
        # The answer watchdog (`watch_answers`): reports a server offer left unanswered too long.
        self._answer_timeout_s = 0.0
        self._on_unanswered: Unanswered | None = None
        self._call_later: CallLater | None = None
        self._answer_timer: Timer | None = None
        self._negotiation_needed = False
        self._negotiation_task: asyncio.Task[None] | None = None
        self._pending: dict[str, PublishedTrack] = {}  # received m-lines not yet in an accepted offer
        self._labels: dict[str, str] = {}
        self._trickled_candidates = 0
        # Whether this client decodes H264 (from its first offer; None: it offered no video). The room
        # replaces `h264_everywhere` with "every participant does": else publishers are answered VP8 only.
        self.decodes_h264: bool | None = None
        self.h264_everywhere: Callable[[], bool] = lambda: self.decodes_h264 is not False
        # Called once this client is known not to decode H264 (its offer, or an answer declining H264): the
        # room switches H264 publishers to VP8 (`use_vp8`).
        self.lacks_h264: LacksH264 = _nothing
        # Published H264 video m-lines (mids) to offer again with VP8 only (`use_vp8`), and those in the
        # outstanding server offer.
        self._vp8_pending: set[str] = set()
        self._vp8_offered: set[str] = set()
        self._stats_at = time.monotonic()
        self._stats_bytes = (0, 0)
        self._stats_packets = (0, 0)
        self._sends: set[asyncio.Task[None]] = set()
        self.closed = False
        self.pc.on("track", self._on_track)

    # --- what the signaling adapter calls -----------------------------------------------------------

    async def handle_offer(self, sdp: str, track_labels: dict[str, str] | None = None) -> str:
        """Apply the client's offer and send `{"type": "answer"}` through `send` (do not send it again).
        Returns the answer SDP. `track_labels` maps a track id (msid) or mid to a label such as
        `exam-camera`; unlabelled tracks are `camera` or `microphone`."""
        self._check_sdp(sdp)
        async with self._lock:
            self._check_open()
            if self._offer_outstanding:
                raise MediaError("offer_collision",
                                 "The server's offer is waiting for an answer; roll back and answer it first.")
            self._labels = dict(track_labels or {})
            _check_has_media(sdp)
            sdp = bundle_setup(await self._without_candidates(sdp))
            lacks_h264 = False
            if self.decodes_h264 is None:
                self.decodes_h264 = decodes_h264(sdp)
                lacks_h264 = self.decodes_h264 is False
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                for transceiver in self.pc.getTransceivers():
                    mid = transceiver.mid or ""
                    if mid in self.published:
                        passthrough.keep_codecs(transceiver, FORWARDABLE)
                        codec = self.published[mid].codec
                        if codec is not None and codec.mimeType.lower() == "video/vp8":
                            passthrough.keep_only(transceiver, "video/vp8")  # switched to VP8: stays there
                    elif mid in self._pending:
                        passthrough.keep_codecs(transceiver, FORWARDABLE)
                        if transceiver.kind == "video" and not self.h264_everywhere():
                            # Someone here cannot decode H264 and the SFU does not transcode: VP8, if offered.
                            passthrough.keep_only(transceiver, "video/vp8")
                        track = self._pending[mid]
                        track.codec = passthrough.negotiated_codec(transceiver)
                        if track.codec is None:
                            raise MediaError("codec_unsupported", f"No forwardable {track.kind} codec offered "
                                             f"(supported: {', '.join(FORWARDABLE)}).")
                passthrough.accept_transport_cc(self.pc, sdp)  # browsers estimate their own uplink (media.twcc)
                passthrough.restrict_gathering(self.pc, self._config.listen_ips, self._config.announced_ip,
                                           self._config.udp_receive_buffer_bytes)
                passthrough.make_ice_lite(self.pc)
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except MediaError:
                raise
            except Exception as exc:  # aiortc raises ValueError, OperationError, InvalidStateError, ...
                raise MediaError("sdp_invalid", f"The offer could not be applied: {exc}") from exc
            answer_sdp = self.pc.localDescription.sdp
            await self._send({"type": "answer", "sdp": answer_sdp})
            self._first_offer_answered = True
            removed = self._unpublish_stopped()
            added = self._announce_pending()
        if lacks_h264:  # before this client's first server offer, which then has no H264 m-line
            await self.lacks_h264(self)
        if added and not self.h264_everywhere():
            self.use_vp8()  # someone lacking H264 came in while this offer was being answered with H264
        if added or removed:
            await self._on_tracks_changed(self, added, removed)
        if self._negotiation_needed:
            self._schedule_negotiation()
        return answer_sdp

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to the server's last offer."""
        self._check_sdp(sdp)
        async with self._lock:
            self._check_open()
            if not self._offer_outstanding:
                raise MediaError("no_offer_outstanding", "There is no server offer waiting for an answer.")
            sdp = bundle_setup(await self._without_candidates(sdp))  # one DTLS role per transport
            try:
                sdp, declined = accept_declined(sdp, self.pc.localDescription.sdp)
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                # aiortc renegotiates header extensions on every remote description and drops the one it does
                # not know: keep transport-cc on the client's sending m-lines across the SFU's own offers.
                passthrough.accept_transport_cc(self.pc, sdp)
            except Exception as exc:
                raise MediaError("sdp_invalid", f"The answer could not be applied: {exc}") from exc
            self._offer_settled()
            lacks_h264 = False
            for transceiver in self.pc.getTransceivers():
                if transceiver.mid in declined:  # the client cannot use it (e.g. H264 in Firefox)
                    transceiver.direction = "inactive"
                    codec = passthrough.negotiated_codec(transceiver)
                    if codec is not None and codec.mimeType.lower() == "video/h264" and self.decodes_h264 is not False:
                        self.decodes_h264 = False
                        lacks_h264 = True
            switched = self._switched_to_vp8()
        if switched:  # every subscriber is bound anew, to an m-line of the new codec
            await self._on_tracks_changed(self, switched, switched)
        if lacks_h264:
            await self.lacks_h264(self)
        if self._negotiation_needed:
            self._schedule_negotiation()

    def watch_answers(self, timeout_s: float, on_unanswered: Unanswered, *,
                      call_later: CallLater | None = None) -> None:
        """Call `on_unanswered` when a server offer has waited `timeout_s` for the client's answer. A client that
        never answers blocks every later renegotiation (the server never has two offers outstanding); what to
        do about it is the adapter's call (the signaling socket closes with 4408 and the client reconnects).
        `call_later`: the loop's, or a test's clock."""
        self._answer_timeout_s = timeout_s
        self._on_unanswered = on_unanswered
        self._call_later = call_later or asyncio.get_running_loop().call_later

    @property
    def offer_outstanding(self) -> bool:
        """A server offer is waiting for the client's answer."""
        return self._offer_outstanding

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        """A trickled RTCIceCandidateInit (`{"candidate", "sdpMid", "sdpMLineIndex"}`), or None at the end.
        Checked and counted, then dropped: the server is ICE-lite and never dials a client's candidates."""
        self._check_open()
        if candidate is None or not candidate.get("candidate"):
            return  # end-of-candidates: nothing to wait for, the client's checks are what counts
        try:
            line = str(candidate["candidate"])
            candidate_from_sdp(line.removeprefix("candidate:"))  # read to refuse garbage, never used
        except Exception as exc:
            raise MediaError("candidate_invalid", f"The ICE candidate could not be read: {exc}") from exc
        self._trickled_candidates += 1
        if self._trickled_candidates > self._config.max_remote_candidates:
            raise MediaError("too_many_candidates", f"Mer enn {self._config.max_remote_candidates} "
                             "ICE-kandidater; resten blir ikke brukt.")

    # --- what the room calls ------------------------------------------------------------------------

    def use_vp8(self) -> list[PublishedTrack]:
        """Someone in the room cannot decode H264: offer each H264 video m-line this client publishes on again
        with VP8 only, if the client offered VP8 there (a server offer; browsers switch their encoder when they
        answer it). Returns the tracks that are switching (also those already on their way); until the client
        answers they go on in H264."""
        switching = []
        for transceiver, (codecs, _) in passthrough.negotiated_parameters(self.pc).items():
            mid = transceiver.mid or ""
            track = self.published.get(mid)
            if track is None or track.kind != "video" or track.codec is None \
                    or track.codec.mimeType.lower() != "video/h264" or not _only_vp8(codecs):
                continue
            if mid not in self._vp8_offered:
                self._vp8_pending.add(mid)
            track.vp8_coming = True
            switching.append(track)
        if self._vp8_pending:
            self._schedule_negotiation()
        return switching

    def subscribe(self, published: PublishedTrack) -> None:
        if published.id in self._subscriptions or self.closed or published.closed:
            return
        if published.vp8_coming and self.decodes_h264 is False:
            return  # it cannot decode this H264; subscribed once the publisher sends VP8 (`use_vp8`)
        assert published.codec is not None  # an announced track has its codec (Peer refuses an offer without)
        slot = next((s for s in self._slots if s.forwarder.published is None and s.transceiver is not None
                     and s.forwarder.kind == published.kind
                     and s.forwarder.mime_type == published.codec.mimeType.lower()), None)
        if slot is None:
            slot = _Subscription(TrackForwarder(published.kind, self.participant_id, self._counters,
                                                self.bandwidth))
            self._slots.append(slot)
        slot.forwarder.attach(published)
        if published.kind == "video" and self.bandwidth.paused:
            slot.forwarder.pause()
            self._send_soon(_quality_event(published.participant_id, paused=True))
        if slot.transceiver is not None:  # a free m-line from a participant who left: reuse it
            slot.transceiver.direction = "sendonly"
            passthrough.set_msid(slot.transceiver.sender, _msid_token(published.participant_id), published.id)
        self._subscriptions[published.id] = slot
        self._count_streams()
        self._schedule_negotiation()

    def unsubscribe(self, published: PublishedTrack) -> None:
        slot = self._subscriptions.pop(published.id, None)
        if slot is None:
            return
        slot.forwarder.detach()
        self._count_streams()
        if slot.transceiver is None:  # never offered: forget it
            slot.forwarder.stop()
            self._slots.remove(slot)
            return
        # aiortc cannot remove an m-line; it goes inactive and waits for the next track of its kind.
        slot.transceiver.direction = "inactive"
        self._schedule_negotiation()

    def subscribed_tracks(self) -> list[TrackForwarder]:
        return [s.forwarder for s in self._subscriptions.values()]

    def sdp_media_count(self) -> int:
        """m-lines this peer connection has (published and subscribed, active or waiting for reuse)."""
        return len(self.pc.getTransceivers())

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.participant_id,
            "role": self.role,
            "display_name": self.display_name,
            "tracks": [t.describe() for t in self.published.values()],
            "stats": {**self.stats.as_dict(), "quality": self.stats.quality},
        }

    async def sample_stats(self) -> None:
        """Refresh `stats` from the counters and aiortc's RTCP-based reports; probe a paused video."""
        now = time.monotonic()
        for track in self.published.values():
            track.sample_bitrate(now)
        if self.bandwidth.probe() is False:
            self._set_video_paused(False)
        elapsed = max(now - self._stats_at, 1e-3)
        bytes_in = sum(t.counters.bytes for t in self.published.values())
        bytes_out = sum(s.forwarder.counters.bytes for s in self._slots)
        self.stats.bitrate_in_bps = 8 * (bytes_in - self._stats_bytes[0]) / elapsed
        self.stats.bitrate_out_bps = 8 * (bytes_out - self._stats_bytes[1]) / elapsed
        self._stats_at, self._stats_bytes = now, (bytes_in, bytes_out)
        received = lost = 0
        rtts: list[float] = []
        fractions: list[float] = []
        for report in (await self.pc.getStats()).values():
            if report.type == "inbound-rtp":
                received += report.packetsReceived
                lost += max(report.packetsLost, 0)
            elif report.type == "remote-inbound-rtp":
                fractions.append(report.fractionLost / 256)
                if report.roundTripTime is not None:
                    rtts.append(report.roundTripTime)
        d_received = received - self._stats_packets[0]
        d_lost = lost - self._stats_packets[1]
        self._stats_packets = (received, lost)
        self.stats.packet_loss_in = d_lost / (d_received + d_lost) if d_received + d_lost > 0 else 0.0
        self.stats.packet_loss_out = max(fractions, default=0.0)
        self.stats.rtt_s = sum(rtts) / len(rtts) if rtts else None

    async def close(self) -> list[PublishedTrack]:
        """Close the peer connection; returns the tracks it published, for the room to unsubscribe."""
        if self.closed:
            return []
        self.closed = True
        self._offer_settled()
        if self._negotiation_task is not None:
            self._negotiation_task.cancel()
        for task in list(self._sends):
            task.cancel()
        for slot in self._slots:
            slot.forwarder.stop()
        self._slots.clear()
        self._subscriptions.clear()
        published = list(self.published.values())
        for track in published:
            track.close()
        self.published.clear()
        for track in self._pending.values():
            track.close()
        self._pending.clear()
        await self.pc.close()
        self._counters.peer_connections_closed += 1
        return published

    # --- internals ----------------------------------------------------------------------------------

    def _check_sdp(self, sdp: object) -> None:
        if not isinstance(sdp, str) or not sdp.strip():
            raise MediaError("sdp_invalid", "The SDP must be a non-empty string.")
        if len(sdp.encode()) > self._config.sdp_max_bytes:
            raise MediaError("sdp_too_large", f"The SDP is larger than {self._config.sdp_max_bytes} bytes.")

    async def _without_candidates(self, sdp: str) -> str:
        """The client's SDP without candidates (see `make_ice_lite`); too many is said, not fatal."""
        sdp, count = strip_candidates(sdp)
        if count > self._config.max_remote_candidates:
            await self._send(MediaError("too_many_candidates", f"Mer enn {self._config.max_remote_candidates} "
                                        "ICE-kandidater i SDP; de blir ikke brukt.").as_event())
        return sdp

    def _check_open(self) -> None:
        if self.closed:
            raise MediaError("participant_left", "This participant has left the consultation.")

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._send_message(message)
        except Exception:  # a closed WebSocket: the adapter removes the participant; nothing to do here
            log.info("could not send %s to %s", message.get("type"), self.participant_id, exc_info=True)

    def _on_track(self, track: Any) -> None:
        """aiortc's `track` event, during setRemoteDescription of the client's offer."""
        transceiver = next((t for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        if transceiver is None:
            return
        mid = transceiver.mid or ""
        passthrough.keep_codecs(transceiver, FORWARDABLE)
        codec = passthrough.negotiated_codec(transceiver)
        label = self._labels.get(mid) or self._labels.get(track.id) or DEFAULT_LABELS[track.kind]
        receiver = transceiver.receiver
        published = PublishedTrack(
            track_id=uuid.uuid4().hex, kind=track.kind, label=label, participant_id=self.participant_id,
            codec=codec, send_pli=lambda: passthrough.send_pli(receiver),
            config=self._config, counters=self._counters)
        # Installed now, before aiortc starts the receiver; packets only reach subscribers once announced.
        published.tap = passthrough.install_rtp_tap(receiver, published.on_packet)
        self._pending[mid] = published

    def _announce_pending(self) -> list[PublishedTrack]:
        """Received m-lines of the accepted offer become published tracks (a failed offer left them pending)."""
        added = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            if mid in self._pending and transceiver.currentDirection in ("recvonly", "sendrecv"):
                track = self._pending.pop(mid)
                self.published[mid] = track
                added.append(track)
        return added

    def _unpublish_stopped(self) -> list[PublishedTrack]:
        """Tracks whose m-line the client no longer sends on (it removed the track or stopped it)."""
        removed = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            if mid in self.published and transceiver.currentDirection not in ("recvonly", "sendrecv"):
                track = self.published.pop(mid)
                track.close()
                removed.append(track)
        return removed

    def _offer_sent(self) -> None:
        self._offer_outstanding = True
        if self._on_unanswered is not None and self._call_later is not None:
            self._answer_timer = self._call_later(self._answer_timeout_s, self._answer_overdue)

    def _offer_settled(self) -> None:
        """Answered (or closed): the watchdog stands down."""
        self._offer_outstanding = False
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    def _answer_overdue(self) -> None:
        self._answer_timer = None
        if self.closed or not self._offer_outstanding or self._on_unanswered is None:
            return
        log.info("server offer to %s unanswered for %.0f s", self.participant_id, self._answer_timeout_s)
        task = asyncio.ensure_future(self._on_unanswered())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _schedule_negotiation(self) -> None:
        self._negotiation_needed = True
        if self.closed or (self._negotiation_task is not None and not self._negotiation_task.done()):
            return
        self._negotiation_task = asyncio.create_task(self._negotiate())

    async def _negotiate(self) -> None:
        try:
            await self._offer_changes()
        except asyncio.CancelledError:
            raise
        except Exception:  # logged, not lost in an unawaited task; the next change retries
            log.exception("server offer to %s failed", self.participant_id)

    async def _offer_changes(self) -> None:
        async with self._lock:
            if self.closed or not self._first_offer_answered or self._offer_outstanding:
                return  # handle_offer / handle_answer reschedule
            if not self._negotiation_needed:
                return
            self._negotiation_needed = False
            for slot in self._slots:
                if slot.transceiver is None and slot.forwarder.published is not None:
                    slot.transceiver = self._add_sender(slot.forwarder)
            passthrough.restrict_gathering(self.pc, self._config.listen_ips, self._config.announced_ip,
                                           self._config.udp_receive_buffer_bytes)
            passthrough.make_ice_lite(self.pc)
            negotiated = passthrough.negotiated_parameters(self.pc)
            self._offer_vp8(negotiated)
            offer = await self.pc.createOffer()
            sdp = passthrough.keep_negotiated_numbering(self.pc, offer.sdp, negotiated)
            await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if self.closed:
                return
            self._offer_sent()
            await self._send({"type": "offer", "sdp": self.pc.localDescription.sdp, "tracks": self._track_map()})

    def _offer_vp8(self, negotiated: passthrough.Negotiated) -> None:
        """In the offer about to be made, the m-lines `use_vp8` marked list VP8 (and its RTX) only."""
        for transceiver, (codecs, extensions) in list(negotiated.items()):
            mid = transceiver.mid or ""
            if mid not in self._vp8_pending:
                continue
            self._vp8_pending.discard(mid)
            vp8 = _only_vp8(codecs)
            track = self.published.get(mid)
            if vp8 and track is not None:
                negotiated[transceiver] = (vp8, extensions)
                self._vp8_offered.add(mid)
                track.hold_codec()  # VP8 sent before the answer arrives is not forwarded as H264
        self._vp8_pending.clear()

    def _switched_to_vp8(self) -> list[PublishedTrack]:
        """After the client's answer: the tracks whose m-line now carries VP8 (see `use_vp8`)."""
        switched = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            track = self.published.get(mid)
            if mid not in self._vp8_offered or track is None:
                continue
            codec = passthrough.negotiated_codec(transceiver)
            if codec is not None and codec.mimeType.lower() == "video/vp8" and track.codec is not None \
                    and track.codec.mimeType.lower() != "video/vp8":
                log.info("%s's video switched to VP8", self.participant_id)
                track.switch_codec(codec)
                switched.append(track)
        self._vp8_offered.clear()
        return switched

    def _track_map(self) -> list[dict[str, str]]:
        """Which m-line carries whose track: browsers expose the mid, not the msid track id."""
        tracks = []
        for slot in self._slots:
            published = slot.forwarder.published
            if published is not None and slot.transceiver is not None and slot.transceiver.mid is not None:
                tracks.append({"mid": slot.transceiver.mid, "participant_id": published.participant_id,
                               **published.describe()})
        return tracks

    def _add_sender(self, forwarder: TrackForwarder) -> RTCRtpTransceiver:
        published = forwarder.published
        assert published is not None and published.codec is not None  # attached to an announced track
        transceiver = self.pc.addTransceiver(forwarder, direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities(published.kind).codecs
        mime = published.codec.mimeType.lower()
        same = [c for c in capabilities if c.mimeType.lower() == mime
                and _same_profile(c.parameters, published.codec.parameters)]
        # One H264 variant, the publisher's own profile if we have it (aiortc has 42001f and 42e01f).
        exact = [c for c in same if str(c.parameters.get("profile-level-id", "")).lower()
                 == str(published.codec.parameters.get("profile-level-id", "")).lower()]
        transceiver.setCodecPreferences((exact or same)[:1]
                                        + [c for c in capabilities if c.mimeType.lower().endswith("/rtx")])
        forwarder.port = passthrough.RtpSendPort(transceiver.sender, forwarder.on_keyframe_request,
                                                 self._on_estimate)
        # The subscriber can tell whose track it is from the msid: "<participant id> <track id>".
        passthrough.set_msid(transceiver.sender, _msid_token(published.participant_id), published.id)
        return transceiver


    # --- bandwidth ----------------------------------------------------------------------------------

    def _on_estimate(self, bitrate: int) -> None:
        """A REMB from this participant (it covers every stream it receives)."""
        forwarders = [s.forwarder for s in self._subscriptions.values()
                      if s.forwarder.kind == "video" and s.forwarder.published is not None]
        video = [t for f in forwarders if (t := f.published) is not None]
        offered = sum(t.bitrate_bps for t in video)
        ports = [f.port for f in forwarders if f.port is not None]
        rtts = [p.rtt_s for p in ports if p.rtt_s is not None]
        congestion = Congestion(fraction_lost=max((p.fraction_lost for p in ports), default=0.0),
                                sent_packets=sum(f.counters.packets for f in forwarders),
                                nacked_packets=sum(p.nacked for p in ports), rtt_s=max(rtts, default=None))
        change = self.bandwidth.on_estimate(bitrate, offered, congestion=congestion)
        if change is not None:
            self._set_video_paused(change)
        for track in video:
            track.subscriber_estimate_changed()

    def _set_video_paused(self, paused: bool) -> None:
        """Pause or resume every video this participant receives, and tell it whose (`quality` events)."""
        if paused:
            self._counters.video_pauses += 1
        log.info("video %s for %s: estimate %s bit/s", "paused" if paused else "resumed", self.participant_id,
                 self.bandwidth.estimate_bps)
        for slot in self._subscriptions.values():
            forwarder = slot.forwarder
            if forwarder.kind != "video" or forwarder.published is None:
                continue
            if paused:
                forwarder.pause()
            else:
                forwarder.resume()
            self._send_soon(_quality_event(forwarder.published.participant_id, paused))

    def _count_streams(self) -> None:
        kinds = [s.forwarder.kind for s in self._subscriptions.values()]
        self.bandwidth.video_streams = kinds.count("video")
        self.bandwidth.audio_streams = kinds.count("audio")

    def _send_soon(self, message: dict[str, Any]) -> None:
        """Send from a synchronous callback (RTCP handling)."""
        if self.closed:
            return
        task = asyncio.create_task(self._send(message))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)


def _quality_event(participant_id: str, paused: bool) -> dict[str, Any]:
    return {"type": "quality", "participant_id": participant_id, "video": "paused" if paused else "on",
            "reason": "bandwidth"}


def _msid_token(value: str) -> str:
    """An msid id is 1-64 token characters (RFC 8830); participant ids normally are already."""
    return re.sub(r"[^A-Za-z0-9!#$%&'*+\-.^_`{|}~]", "-", value)[:64] or "-"


def _check_has_media(sdp: str) -> None:
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:
        raise MediaError("sdp_invalid", f"The SDP could not be parsed: {exc}") from exc
    if not any(m.kind in ("audio", "video") for m in description.media):
        raise MediaError("sdp_invalid", "The offer has no audio or video section; "
                         "offer a recvonly transceiver to only receive.")


def _only_vp8(codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """VP8 and its RTX out of negotiated codecs (empty if VP8 is not among them)."""
    vp8 = [c for c in codecs if c.mimeType.lower() == "video/vp8"]
    types = {c.payloadType for c in vp8}
    return vp8 + [c for c in codecs if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in types]


def _same_profile(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    key = "profile-level-id"
    return key not in ours or key not in theirs or str(ours[key])[:2] == str(theirs[key])[:2]
