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
since every probe floods a weak link (and its audio) for a moment. A link overrun outright (the estimate
under half of what is offered, with `SEVERE_LOSS` lost or the round trip grown by `video_pause_queue_delay_s`)
pauses after `SEVERE_PAUSE_AFTER_S` instead: every second of such a flood costs the voice, and the signaling
socket shares the link (its pings and their answers wait behind the video).

A REMB is a receive-side delay estimate, and a shaped link can hold it above what the link carries (Chromium
behind a 500 kbit/s tbf reported ~630 kbit/s while the link dropped what did not fit). So the subscriber's
own reports also set a loss- and delay-based capacity (`capacity_bps`, None while they show nothing wrong), as
libwebrtc's sender does (never below half of `video_pause_bps`; the pause compares the lesser of the two
with its threshold): loss of `CAPACITY_LOSS` or more (receiver reports, or the share NACKed, which counts
the loss RTX repairs) cuts what is sent to it by half the loss; a round trip grown by `CAPACITY_QUEUE_DELAY_S`
(the link's queue) cuts it to `CAPACITY_DELAY_FACTOR`; at most once per `CAPACITY_DECREASE_INTERVAL_S` (one
receiver report). Under `CAPACITY_CLEAN_LOSS` with no queue it grows `CAPACITY_GROWTH` a second, and is
dropped once it reaches the REMB. The streams share the lesser of the two.

The subscriber's reports also say it is there: `overrun_reported_at` is when the last report came that showed
its link overrun by what the SFU sends; the signaling liveness counts that as hearing from the client, since
its pongs then wait in the same flooded queue (signaling/liveness.py).
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
# An outright overrun: the estimate under half of what is offered, and this much lost (or the queue grown).
SEVERE_LOSS = 0.25
SEVERE_PAUSE_AFTER_S = 0.25
# The loss- and delay-based capacity (libwebrtc's loss thresholds: 2 % and 10 %; growth 8 % a second).
CAPACITY_LOSS = 0.1
CAPACITY_CLEAN_LOSS = 0.02
CAPACITY_QUEUE_DELAY_S = 0.05
CAPACITY_DELAY_FACTOR = 0.85
CAPACITY_DECREASE_INTERVAL_S = 1.0
CAPACITY_GROWTH = 1.08


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
        self.capacity_bps: float | None = None  # loss- and delay-based; None: the REMB alone
        self._capacity_at = 0.0  # when it last changed
        self._decreased_at: float | None = None
        self.overrun_reported_at: float | None = None  # time.monotonic() of the last report showing an overrun

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
        congested = self.congested(congestion.fraction_lost)
        if not self.paused and offered_video_bps > 0 and (offered_video_bps > bitrate or congested):
            self.overrun_reported_at = time.monotonic()  # the real clock, as the liveness's
        if not self.paused:
            self._follow_capacity(bitrate, offered_video_bps, congestion.fraction_lost, now)
        log.debug("%x: estimate %d bit/s, video offered %.0f, lost %.2f, nacked %.2f, queue %.3f s, capacity %s, "
                  "paused %s", id(self) & 0xFFFF, bitrate, offered_video_bps, congestion.fraction_lost, self.nack_share,
                  self.queue_delay_s, self.capacity_bps and int(self.capacity_bps), self.paused)
        if self.paused:
            if bitrate >= config.video_resume_bps:
                return self._resume()
            return None
        # What the link carries: the REMB, or less if the link's own loss and queue say so.
        carried = bitrate if self.capacity_bps is None else min(bitrate, int(self.capacity_bps))
        overrun = offered_video_bps > carried and congested
        if carried < config.video_pause_bps and overrun and config.pause_video_when_overrun:
            severe = 2 * carried < offered_video_bps and (
                congestion.fraction_lost >= SEVERE_LOSS or self.queue_delay_s >= config.video_pause_queue_delay_s)
            if self._low_since is None:
                self._low_since = now
            if now - self._low_since >= (SEVERE_PAUSE_AFTER_S if severe else config.video_pause_after_s):
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

    def _follow_capacity(self, bitrate: int, offered_video_bps: float, fraction_lost: float, now: float) -> None:
        """Cut or grow `capacity_bps` from the subscriber's loss and queue (see the module doc)."""
        loss = max(fraction_lost, min(self.nack_share, 1.0))
        queued = self.queue_delay_s >= CAPACITY_QUEUE_DELAY_S
        capacity = self.capacity_bps
        if loss >= CAPACITY_LOSS or queued:
            if offered_video_bps <= 0 or (self._decreased_at is not None
                                          and now - self._decreased_at < CAPACITY_DECREASE_INTERVAL_S):
                return
            sent = offered_video_bps + self.audio_streams * self._config.audio_allowance_bps
            base = sent if capacity is None else min(capacity, sent)
            factor = 1 - 0.5 * min(loss, 1.0) if loss >= CAPACITY_LOSS else 1.0
            if queued:
                factor = min(factor, CAPACITY_DELAY_FACTOR)
            # Not below half the pause threshold: a link that cannot carry that pauses (the carried estimate
            # is under the threshold), and the way back up at 8 % a second stays short.
            self.capacity_bps = max(base * factor, min(base, self._config.video_pause_bps / 2))
            self._decreased_at = self._capacity_at = now
        elif capacity is not None and loss < CAPACITY_CLEAN_LOSS:
            capacity *= CAPACITY_GROWTH ** min(max(now - self._capacity_at, 0.0), 1.0)
            self.capacity_bps = None if capacity >= bitrate else capacity
            self._capacity_at = now
        else:
            self._capacity_at = now

    def probe(self) -> bool | None:
        """Called now and then: False (resume video to probe the link) when a pause has lasted long enough."""
        if self.paused and self.clock() - self._paused_at >= self._probe_after:
            return self._resume(probing=True)
        return None

    def _resume(self, probing: bool = False) -> bool:
        self.paused = False
        self._probing = probing
        self._low_since = None
        # What was measured before the pause says nothing of the link now; the probe measures again.
        self.capacity_bps = None
        self._decreased_at = None
        return False

    def video_share_bps(self) -> int | None:
        """What one of this subscriber's video streams may use; None if unknown or video is paused."""
        if self.estimate_bps is None or self.paused or not self.video_streams:
            return None
        audio = self.audio_streams * self._config.audio_allowance_bps
        usable = int(self.estimate_bps * self._config.estimate_headroom)
        if self.capacity_bps is not None:
            usable = min(usable, int(self.capacity_bps))
        return max(0, usable - audio) // self.video_streams
