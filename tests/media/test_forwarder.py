import asyncio
import tracemalloc

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.forwarder import TrackForwarder
from media.payload import EncodedFrame
from media.publisher import PublishedTrack
from media.stats import SfuCounters

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


def published(plis: list[int], kind: str = "video") -> PublishedTrack:
    async def send_pli() -> bool:
        plis.append(1)
        return True

    return PublishedTrack(track_id="t1", kind=kind, label="camera", participant_id="p1", codec=VP8,
                          send_pli=send_pli, keyframe_min_interval_s=0.0, counters=SfuCounters())


async def started(forwarder: TrackForwarder) -> None:
    task = asyncio.create_task(forwarder.recv())
    await asyncio.sleep(0)
    forwarder.push(EncodedFrame(b"\x10key", 0, True))
    assert (await task).keyframe


async def test_a_new_subscriber_asks_for_a_keyframe_and_skips_frames_until_it_comes() -> None:
    plis: list[int] = []
    track = published(plis)
    forwarder = TrackForwarder("video", "s1", max_frames=4, counters=SfuCounters())
    forwarder.attach(track)
    task = asyncio.create_task(forwarder.recv())
    await asyncio.sleep(0.01)
    assert plis  # asked when the sender started reading
    track.on_frame(VP8, type("F", (), {"data": b"\x11delta", "timestamp": 1})())
    assert forwarder.counters.dropped_frames == 1 and not task.done()
    track.on_frame(VP8, type("F", (), {"data": b"\x10key", "timestamp": 2})())
    assert (await task).keyframe


async def test_a_slow_subscriber_drops_frames_and_never_grows_memory() -> None:
    plis: list[int] = []
    track = published(plis)
    forwarder = TrackForwarder("video", "s1", max_frames=8, counters=SfuCounters())
    forwarder.attach(track)
    await started(forwarder)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20_000):  # nobody reads: the sender is stuck
        forwarder.push(EncodedFrame(b"\x10" if i % 50 == 0 else b"\x11" + bytes(1000), i, i % 50 == 0))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(forwarder._queue) <= 8
    assert forwarder.counters.dropped_frames > 19_000
    assert grown < 100_000
    assert plis  # asked for a keyframe to recover


async def test_audio_drops_the_oldest_packets_when_full() -> None:
    forwarder = TrackForwarder("audio", "s1", max_frames=3, counters=SfuCounters())
    forwarder.attach(published([], kind="audio"))
    task = asyncio.create_task(forwarder.recv())
    await asyncio.sleep(0)
    forwarder.push(EncodedFrame(b"a0", 0, True))
    await task
    for i in range(1, 6):
        forwarder.push(EncodedFrame(b"a%d" % i, i * 960, True))
    assert [f.data for f in forwarder._queue] == [b"a3", b"a4", b"a5"]


async def test_a_reused_forwarder_keeps_timestamps_increasing_across_publishers() -> None:
    forwarder = TrackForwarder("video", "s1", max_frames=8, counters=SfuCounters())
    forwarder.attach(published([]))
    await started(forwarder)
    forwarder.push(EncodedFrame(b"\x11", 900_000, False))
    forwarder.attach(published([]))  # the first publisher left; the next one starts at timestamp 0
    forwarder.push(EncodedFrame(b"\x10", 0, True))
    timestamps = [f.timestamp for f in forwarder._queue]
    assert timestamps == [903_000]  # the old publisher's queued frames are gone; time moves on
