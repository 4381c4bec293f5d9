"""One subscriber's bandwidth: its receive estimate (RTCP REMB), what share of it each video stream it
receives may use, and whether its video is paused because the estimate cannot carry video at all.

The subscriber's REMB covers its whole transport (every stream it receives). Audio is assumed to need
`audio_allowance_bps` per stream; the rest is shared evenly among the video streams. That share caps what
each publisher is told it may send (see `PublishedTrack.bitrate_cap`).

Pausing needs more than a low estimate. A receive-side estimator reports at most about 1.5 times what
arrives and climbs back only ~8 % a second, so a publisher sending little (a still picture), or video just
resumed, shows a low estimate on a perfect link. Video pauses when, for `video_pause_after_s`, the estimate
stays below `video_pause_bps` while more video is offered than the estimate and the subscriber reports
losing at least `video_pause_loss` of it: the link is really overrun. A paused subscriber receives no video,
so its estimator has nothing to measure: video comes back when an estimate reaches `video_resume_bps`, or on
a probe `video_probe_after_s` after the pause (if the link is still too weak, loss comes back and video
pauses again). Each probe that fails doubles the wait for the next, up to 8 times, since every probe floods a
weak link (and its audio) for a moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from media.config import MediaConfig


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

    def on_estimate(self, bitrate: int, offered_video_bps: float, fraction_lost: float = 0.0) -> bool | None:
        """A REMB from the subscriber. Returns True (pause video), False (resume) or None (no change).
        `offered_video_bps` is what the publishers of its video currently send, `fraction_lost` the most
        the subscriber's receiver reports say it lost of one of them."""
        config = self._config
        self.estimate_bps = bitrate
        now = self.clock()
        if self.paused:
            if bitrate >= config.video_resume_bps:
                return self._resume()
            return None
        overrun = offered_video_bps > bitrate and fraction_lost >= config.video_pause_loss
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
        return max(0, self.estimate_bps - audio) // self.video_streams
