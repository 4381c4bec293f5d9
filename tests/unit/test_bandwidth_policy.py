"""media.bandwidth: what says a subscriber's link is overrun besides reported loss (issue 10). A browser
counts a packet repaired by retransmission as received, so its receiver reports show little loss on a link
that drops a fifth of what it is sent; NACKs and the queue's round-trip growth still show it."""

from __future__ import annotations

from media.bandwidth import Congestion, SubscriberBandwidth
from media.config import MediaConfig

CONFIG = MediaConfig()
LOW = CONFIG.video_pause_bps - 30_000
OFFERED = 400_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(bandwidth: SubscriberBandwidth, clock: Clock, seconds: float, estimate: int, offered: float,
         signals: dict[str, float]) -> list[bool | None]:
    """REMBs every half second for `seconds`; per second `sent` video packets go out, `nack` of them are
    asked for again and the round trip is `rtt`."""
    results = []
    sent = nacked = 0
    for _ in range(int(seconds * 2)):
        clock.now += 0.5
        sent += int(signals.get("sent", 60) / 2)
        nacked += int(signals.get("nack", 0) / 2)
        congestion = Congestion(fraction_lost=signals.get("lost", 0.0), sent_packets=sent, nacked_packets=nacked,
                                rtt_s=signals.get("rtt"))
        results.append(bandwidth.on_estimate(estimate, offered, congestion=congestion))
    return results


def test_nacks_say_the_link_is_overrun_when_the_receiver_reports_hide_the_loss() -> None:
    clock = Clock()
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    assert _run(bandwidth, clock, 5, LOW, OFFERED, {"sent": 60, "nack": 4}) == [None] * 10  # under 10 %: no
    assert True in _run(bandwidth, clock, CONFIG.video_pause_after_s + 2, LOW, OFFERED, {"sent": 60, "nack": 12})
    assert bandwidth.paused and bandwidth.nack_share >= CONFIG.video_pause_loss


def test_a_queue_growing_on_the_link_says_it_is_overrun() -> None:
    clock = Clock()
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    assert _run(bandwidth, clock, 3, LOW, OFFERED, {"rtt": 0.03}) == [None] * 6
    assert _run(bandwidth, clock, 5, LOW, OFFERED, {"rtt": 0.03 + CONFIG.video_pause_queue_delay_s / 2}) \
        == [None] * 10  # a little jitter is no queue
    assert True in _run(bandwidth, clock, CONFIG.video_pause_after_s + 2, LOW, OFFERED,
                        {"rtt": 0.05 + CONFIG.video_pause_queue_delay_s})
    assert bandwidth.paused and bandwidth.min_rtt_s == 0.03


def test_no_pause_without_a_low_estimate_or_while_the_estimate_carries_what_is_offered() -> None:
    overrun = {"nack": 30, "lost": 0.3, "rtt": 1.0}
    clock = Clock()
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    _run(bandwidth, clock, 1, 400_000, OFFERED, {"rtt": 0.02})
    # A congested link whose estimate still carries useful video: the caps handle it, and a pause comes only once
    # the link's own loss and queue have cut its capacity below the pause threshold (the REMB alone never does).
    _pauses_only_below_capacity(bandwidth, clock, CONFIG.video_pause_bps + 50_000, OFFERED, overrun)
    # A still picture sending less than the estimate: paused only once the capacity is below what it sends.
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    _run(bandwidth, clock, 1, 400_000, OFFERED, {"rtt": 0.02})
    _pauses_only_below_capacity(bandwidth, clock, LOW, LOW - 20_000, overrun)
    # No congestion at all: never a pause, whatever the estimate.
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    assert _run(bandwidth, clock, 6, LOW, OFFERED, {"rtt": 0.02}) == [None] * 12
    assert not bandwidth.paused


def _pauses_only_below_capacity(bandwidth: SubscriberBandwidth, clock: Clock, estimate: int, offered: float,
                                signals: dict[str, float]) -> None:
    """Six seconds of reports; a pause, if any, only while the capacity is below both the pause threshold
    and what is offered (the decisions are in the assertion message otherwise)."""
    decided = []
    for _ in range(12):
        capacity_before = bandwidth.capacity_bps
        [result] = _run(bandwidth, clock, 0.5, estimate, offered, signals)
        decided.append((result, capacity_before, bandwidth.capacity_bps))
        if bandwidth.paused:
            break
    for result, _, capacity in decided:
        if result is True:
            assert capacity is not None and capacity < min(CONFIG.video_pause_bps, offered), decided


def test_a_paused_subscriber_comes_back_with_a_good_estimate_and_its_nack_window_starts_again() -> None:
    clock = Clock()
    bandwidth = SubscriberBandwidth(CONFIG, clock=clock)
    assert True in _run(bandwidth, clock, CONFIG.video_pause_after_s + 2, LOW, OFFERED, {"sent": 50, "nack": 20})
    # Paused: nothing is sent; a new peer's counters start from zero again without a negative share.
    assert bandwidth.on_estimate(CONFIG.video_resume_bps, OFFERED, congestion=Congestion()) is False
    assert _run(bandwidth, clock, 4, 600_000, OFFERED, {"sent": 60}) == [None] * 8
    assert bandwidth.nack_share == 0.0 and not bandwidth.paused
