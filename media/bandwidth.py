"""One subscriber's bandwidth: its receive estimate (RTCP REMB), what share of it each video stream it
receives may use, and whether its video is paused because the estimate cannot carry video at all.

The subscriber's REMB covers its whole transport (every stream it receives). Only `estimate_headroom` of it
is handed out (the rest is room for retransmissions and bursts); audio is assumed to need
`audio_allowance_bps` per stream, and the rest is shared evenly among the video streams. That share caps what
each publisher is told it may send (see `PublishedTrack.bitrate_cap`).

Pausing needs more than a low estimate. A receive-side estimator reports at most about 1.5 times what
arrives and climbs back only ~8 % a second, so a publisher sending little (a still picture), or video just
resumed, shows a low estimate on a perfect link. Video pauses when, for `video_pause_after_s`, the estimate
stays below `video_pause_bps` while more video is offered than the estimate and the link shows that it is
really overrun (`Congestion`): the subscriber reports losing at least `video_pause_loss` of its video, or asks
for that share again (NACK: a browser counts a packet repaired by retransmission as received, so its
reports hide the loss that RTX repairs), or the round trip through its link has grown by
`video_pause_queue_delay_s` over the least seen (a shaped link queues what it cannot carry before it drops
it). A paused subscriber receives no video, so an estimator that measures video only (aiortc's) has nothing
to measure: video comes back when an estimate reaches `video_resume_bps` (a browser's REMB goes on with its
audio), or on a probe `video_probe_after_s` after the pause (if the link is still too weak, the overrun
comes back and video pauses again). Each probe that fails doubles the wait for the next, up to 8 times,
since every probe floods a weak link (and its audio) for a moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media.config import MediaConfig

log = logging.getLogger(__name__)

# NACKed packets are counted against those sent over windows of at least this long.
_NACK_WINDOW_S = 1.0


@dataclass(frozen=True)
class Congestion:
    """What the subscriber's RTCP says about its link, for one REMB: the most its last receiver reports say
    it lost of one video stream, packets sent and NACKed so far on its video (running totals), and the
    latest round-trip time measured from its receiver reports (None: not yet)."""

    fraction_lost: float = 0.0
    sent_packets: int = 0
    nacked_packets: int = 0
    rtt_s: float | None = None


class SubscriberBandwidth:
    def __init__(self, config: MediaConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self.clock = clock  # replaceable: tests drive the pause and the probe with their own
        self.estimate_bps: int | None = None
        self.paused = False
        self.video_streams = 0  # video m-lines bound to a publisher, kept by the peer
        self.audio_streams = 0
        self._low_since: float | None = None
        self._paused_at = 0.0
        self._probe_after = config.video_probe_after_s
        self._probing = False  # video is on because of a probe, not a good estimate
        self.nack_share = 0.0  # of the video packets sent in the last window, the share NACKed
        self._nack_mark: tuple[float, int, int] | None = None  # (when, sent, nacked) at the window's start
        self.min_rtt_s: float | None = None
        self.queue_delay_s = 0.0  # the latest round trip over the least seen

    def on_estimate(self, bitrate: int, offered_video_bps: float, fraction_lost: float = 0.0,
                    congestion: Congestion | None = None) -> bool | None:
        """A REMB from the subscriber. Returns True (pause video), False (resume) or None (no change).
        `offered_video_bps` is what the publishers of its video currently send; `congestion` what its RTCP
        says about the link (`fraction_lost` alone: only its receiver reports' loss)."""
        config = self._config
        self.estimate_bps = bitrate
        now = self.clock()
        if congestion is None:
            congestion = Congestion(fraction_lost=fraction_lost)
        self._measure(congestion, now)
        log.debug("estimate %d bit/s, video offered %.0f, lost %.2f, nacked %.2f, queue %.3f s, paused %s",
                  bitrate, offered_video_bps, congestion.fraction_lost, self.nack_share, self.queue_delay_s,
                  self.paused)
        if self.paused:
            if bitrate >= config.video_resume_bps:
                return self._resume()
            return None
        overrun = offered_video_bps > bitrate and self.congested(congestion.fraction_lost)
        if bitrate < config.video_pause_bps and overrun and config.pause_video_when_overrun:
            if self._low_since is None:
                self._low_since = now
            elif now - self._low_since >= config.video_pause_after_s:
                # A failed probe: wait longer for the next one.
                self._probe_after = (min(2 * self._probe_after, 8 * config.video_probe_after_s) if self._probing
                                     else config.video_probe_after_s)
                self.paused = True
                self._paused_at = now
                self._low_since = None
                return True
        else:
            self._low_since = None
            if bitrate >= config.video_resume_bps:
                self._probing = False  # the probe found a good link: the next pause starts from the first wait
        return None

    def congested(self, fraction_lost: float) -> bool:
        """Whether the link shows it is overrun: loss, repairs asked for, or a queue (see the module doc)."""
        config = self._config
        return (fraction_lost >= config.video_pause_loss or self.nack_share >= config.video_pause_loss
                or self.queue_delay_s >= config.video_pause_queue_delay_s)

    def _measure(self, congestion: Congestion, now: float) -> None:
        mark = self._nack_mark
        sent, nacked = congestion.sent_packets, congestion.nacked_packets
        if mark is None or sent < mark[1] or nacked < mark[2]:  # the first report, or the streams changed
            self._nack_mark = (now, sent, nacked)
        elif now - mark[0] >= _NACK_WINDOW_S:
            self.nack_share = (nacked - mark[2]) / max(1, sent - mark[1])
            self._nack_mark = (now, sent, nacked)
        rtt = congestion.rtt_s
        if rtt is not None and rtt >= 0:
            self.min_rtt_s = rtt if self.min_rtt_s is None else min(self.min_rtt_s, rtt)
            self.queue_delay_s = rtt - self.min_rtt_s

    def probe(self) -> bool | None:
        """Called now and then: False (resume video to probe the link) when a pause has lasted long enough."""
        if self.paused and self.clock() - self._paused_at >= self._probe_after:
            return self._resume(probing=True)
        return None

    def _resume(self, probing: bool = False) -> bool:
        self.paused = False
        self._probing = probing
        self._low_since = None
        return False

    def video_share_bps(self) -> int | None:
        """What one of this subscriber's video streams may use; None if unknown or video is paused."""
        if self.estimate_bps is None or self.paused or not self.video_streams:
            return None
        audio = self.audio_streams * self._config.audio_allowance_bps
        usable = int(self.estimate_bps * self._config.estimate_headroom)
        return max(0, usable - audio) // self.video_streams
