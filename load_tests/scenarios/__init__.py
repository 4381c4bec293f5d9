"""Load-test scenarios for issue 7: one command each, one JSON object on the last line, a PNG in load_tests/results.

    python -m load_tests.scenarios.video_ramp    # 1:1 video through the real server, ramped; vs aiortc MediaRelay
    python -m load_tests.scenarios.scale_out     # video_ramp with 1 and with 2 server processes sharing Redis
    python -m load_tests.scenarios.chat_load     # chat latency vs concurrent consultations
    python -m load_tests.scenarios.queue_rush    # a compressed morning rush on the queue
    python -m load_tests.scenarios.pilot_day     # a compressed pilot day: queue, video and chat together

The server runs in its own process(es); load generators run in other processes, pinned away from the
server's core when the machine has more than one. Every JSON result says what ran where.
"""
