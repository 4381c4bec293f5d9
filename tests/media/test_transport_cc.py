"""Transport-cc end to end: a publisher that numbers its packets transport-wide, as Chrome and Firefox do,
gets the SFU's transport feedback for every number it sent, and the SFU runs no receive-side estimator for
it; a publisher that does not (an aiortc peer) keeps aiortc's estimate. Real aiortc peers on loopback,
decoded content checked."""

from __future__ import annotations

import pytest

from media.aiortc_passthrough import send_transport_cc
from tests.media.conftest import connect, has_picture, video_from
from tests.media.test_twcc import parse

pytestmark = [pytest.mark.media, pytest.mark.timeout(90)]


async def test_a_publisher_numbering_its_packets_gets_transport_feedback_instead_of_an_sfu_estimate(
        sfu, make_client) -> None:
    room = sfu.room("c-twcc")
    doctor = make_client("doctor", sender_id=1)
    feedback = send_transport_cc(doctor.pc)  # the browser's part: offer it, number packets when answered
    citizen = make_client("citizen", sender_id=2)  # an aiortc peer: no transport-cc
    await connect(room, doctor)
    await connect(room, citizen)
    await citizen.wait_for(has_picture(citizen, "doctor", frames=30))
    await doctor.wait_for(has_picture(doctor, "citizen", frames=30))
    assert feedback.enabled, "the SFU's answer accepts transport-cc"
    await doctor.wait_for(lambda: len(feedback.feedback) >= 10, what="ten transport feedback messages")

    reports = [parse(message) for message in feedback.feedback]
    numbers: list[int] = []
    arrived = 0
    for report in reports:
        assert report.base == (numbers[-1] + 1) & 0xFFFF if numbers else report.base == 0, \
            "each report starts where the previous ended"
        numbers += list(report.arrivals)
        arrived += sum(at is not None for at in report.arrivals.values())
        times = [at for at in report.arrivals.values() if at is not None]
        assert times and all(0 <= at < 10_000_000 for at in times)  # µs after the report's reference time
    assert numbers == list(range(len(numbers))), "every number sent, reported once, in order"
    assert len(numbers) <= feedback.sent
    assert [r.count for r in reports] == list(range(len(reports)))  # the feedback packet count
    assert arrived >= 0.9 * len(numbers)  # loopback: (nearly) everything arrived

    [doctor_video] = [t for t in room.peer("doctor").published.values() if t.kind == "video"]
    [citizen_video] = [t for t in room.peer("citizen").published.values() if t.kind == "video"]
    assert doctor_video.tap is not None and citizen_video.tap is not None
    await citizen.wait_for(lambda: citizen_video.tap.upstream_bps is not None, within_s=20,
                           what="aiortc's estimate of the aiortc publisher's uplink")
    assert doctor_video.tap.upstream_bps is None  # no receive-side estimate for the numbering publisher

    [video] = video_from(citizen, "doctor")
    before = len(video.markers)
    await citizen.wait_for(lambda: len(video.markers) > before + 30, what="the picture going on")
    assert video.counters_in_order() and {s for s, _ in video.markers} == {1}
