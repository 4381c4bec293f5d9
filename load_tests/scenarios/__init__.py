"""Load-test scenarios for issue 7: one command each, one JSON line printed last and appended to
load_tests/results/<scenario>.jsonl, a PNG beside it.

    python -m load_tests.scenarios.video_ramp    # 1:1 video through the real server, ramped; vs aiortc MediaRelay
    python -m load_tests.scenarios.scale_out     # video_ramp with 1 and with 2 server processes sharing Redis
    python -m load_tests.scenarios.chat_load     # chat latency vs concurrent consultations
    python -m load_tests.scenarios.queue_rush    # a compressed morning rush on the queue
    python -m load_tests.scenarios.pilot_day     # a compressed pilot day: queue, video and chat together

The server runs in its own process(es) on CPU 0; load generators run in other processes on the other CPU(s)
(`load_tests.harness`). Every result says what ran where.
"""
