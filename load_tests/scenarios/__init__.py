"""Load-test scenarios for issue 7: one command each, one JSON line printed last and appended to
load_tests/results/<scenario>.jsonl, a PNG beside it.

    python -m load_tests.scenarios.video_ramp    # 1:1 video through the real server, ramped; vs aiortc MediaRelay
    python -m load_tests.scenarios.scale_out     # video_ramp with 1 and with 2 server processes sharing Redis
    python -m load_tests.scenarios.chat_load     # chat latency vs concurrent consultations
    python -m load_tests.scenarios.queue_rush    # a compressed morning rush on the queue
    python -m load_tests.scenarios.pilot_day     # a compressed pilot day: queue, video and chat together

The server runs in its own process(es) on CPU 0; load generators run in other processes on the other CPU(s)
(`load_tests.harness`). Every result says what ran where.

    python -m load_tests.scenarios               # a smoke run: each scenario at SMOKE_ARGS, results in a temp dir

Each scenario module has `parse_args(argv)` (and, where the load is planned from the command line, `plan(args)`)
apart from `main()`, so tests/unit/test_load_scenarios.py checks them without running any load.
"""

# Each scenario's smallest settings that still go through all of it (pilot_day: video and chat consultations):
# a smoke run of at most ~70 s each, not a measurement.
SMOKE_ARGS: dict[str, list[str]] = {
    "video_ramp": ["--steps", "1", "--measure-s", "2", "--settle-s", "0.5", "--baseline-steps", "1"],
    "scale_out": ["--steps", "1", "--steps-2", "2", "--measure-s", "2", "--settle-s", "0.5"],
    "chat_load": ["--consultations", "1", "--duration", "2", "--interval", "1"],
    "queue_rush": ["--citizens", "5", "--rush-s", "20", "--clinicians", "2", "--tail-s", "20"],
    "pilot_day": ["--municipalities", "3", "--video-share", "0.4", "--time-scale", "120"],
}
