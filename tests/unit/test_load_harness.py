"""The benchmark harness's own measuring parts (load_tests is not shipped, but its figures go into the README):
Redis round trips are counted per request/answer turn, the pre-encoded clip carries markers a decoder reads
back, and figures are percentiles and medians of what was given."""

from __future__ import annotations

import av
import redis

from load_tests.clients import Reception, encode_video_clip, read_marker
from load_tests.harness import RedisTurnCounter, median, percentile


def test_round_trips_are_turns_not_commands(redis_url: str) -> None:
    counter = RedisTurnCounter(redis_url)
    client = redis.Redis.from_url(counter.url)
    client.ping()  # connection set-up (HELLO, ...) is not what is counted below

    before = counter.turns
    client.set("a", 1)
    client.get("a")
    assert counter.turns - before == 2

    before = counter.turns
    client.eval("redis.call('set', 'b', 1); redis.call('incr', 'b'); return redis.call('get', 'b')", 0)
    assert counter.turns - before == 1  # one script, three commands inside it

    before = counter.turns
    pipe = client.pipeline(transaction=True)
    pipe.set("c", 1).incr("c").get("c")
    assert pipe.execute()[-1] == b"2"
    assert counter.turns - before == 1  # MULTI ... EXEC sent at once
    client.close()


def test_clip_frames_carry_sender_and_frame_number_a_decoder_reads_back() -> None:
    clip = encode_video_clip(sender_id=7, width=320, height=240, fps=10, seconds=1, bitrate=200_000)
    decoder = av.CodecContext.create("libvpx", "r")
    markers = [read_marker(f) for data in clip.packets for f in decoder.decode(av.Packet(data))]
    assert markers == [(7, i) for i in range(10)]

    reception = Reception(decode=True)
    reception.markers = [(7, 3), (7, 4), (7, 0), (7, 1), (7, 3), (8, 4)]  # a restart at the keyframe is in order
    assert reception.check_markers(0, sender_id=7, clip_frames=10) == {
        "decoded": 6, "skipped_or_reordered": 1, "wrong_sender": 1, "beyond_clip": 0}


def test_percentile_and_median() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None
    assert median([3, None, 1, 2]) == 2
    assert median([None]) is None
