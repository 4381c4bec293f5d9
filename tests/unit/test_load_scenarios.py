"""The load scenarios (load_tests/scenarios) cannot rot unseen: each one's command line parses at its defaults and
at its smoke settings (`SMOKE_ARGS`), refuses settings out of range, and the load it plans from them is the one
its docstring describes. No load runs here (`python -m load_tests.scenarios` is the smoke run)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
from types import ModuleType

import pytest

import load_tests.scenarios
from load_tests import harness
from load_tests.scenarios import SMOKE_ARGS, pilot_day, queue_rush


def _scenario(name: str) -> ModuleType:
    return importlib.import_module(f"load_tests.scenarios.{name}")


def test_every_scenario_has_smoke_settings() -> None:
    modules = {m.name for m in pkgutil.iter_modules(load_tests.scenarios.__path__) if not m.name.startswith("_")}
    assert modules == set(SMOKE_ARGS)


@pytest.mark.parametrize("name", list(SMOKE_ARGS))
def test_a_scenario_parses_its_defaults_and_its_smoke_settings(name: str) -> None:
    scenario = _scenario(name)
    defaults, smoke = scenario.parse_args([]), scenario.parse_args(SMOKE_ARGS[name])
    assert vars(defaults).keys() == vars(smoke).keys()
    assert defaults != smoke  # the smoke settings are smaller than the defaults, not ignored
    assert callable(scenario.main)


@pytest.mark.parametrize(("name", "argv"), [
    ("video_ramp", ["--steps", "4,2"]),
    ("video_ramp", ["--steps", "0"]),
    ("video_ramp", ["--measure-s", "0"]),
    ("video_ramp", ["--load-processes", "0"]),
    ("scale_out", ["--steps-2", ""]),
    ("scale_out", ["--gap-s-2", "-1"]),
    ("chat_load", ["--consultations", "0"]),
    ("chat_load", ["--consultations", ","]),
    ("chat_load", ["--duration", "121"]),
    ("chat_load", ["--interval", "0"]),
    ("queue_rush", ["--citizens", "0"]),
    ("queue_rush", ["--rush-s", "3000"]),  # (rush + tail) / time scale over 300 s
    ("queue_rush", ["--time-scale", "0"]),
    ("queue_rush", ["--service-s", "0"]),
    ("pilot_day", ["--time-scale", "20"]),  # a 360 s run
    ("pilot_day", ["--time-scale", "200"]),
    ("pilot_day", ["--video-share", "1.5"]),
    ("pilot_day", ["--municipalities", "0"]),
])
def test_a_scenario_refuses_settings_out_of_range(name: str, argv: list[str], capsys: pytest.CaptureFixture[str],
                                                   ) -> None:
    with pytest.raises(SystemExit) as refused:
        _scenario(name).parse_args(argv)
    assert refused.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_scale_out_runs_its_one_process_ramp_with_one_load_generator() -> None:
    args = _scenario("scale_out").parse_args(SMOKE_ARGS["scale_out"])
    assert (args.steps, args.steps_2, args.load_processes, args.load_processes_2) == ([1], [2], 1, 2)


def test_cpu_plans_give_each_server_process_its_cpus_and_the_load_the_rest() -> None:
    every = harness.cpus()
    (one,), load = harness.cpu_plan(1)
    assert one == every[:1] and (load == every[1:] or (len(every) == 1 and load == every))
    servers, load = harness.cpu_plan(2)
    assert len(servers) == 2 and all(servers) and set(load) <= set(every)


def test_pilot_day_plans_the_modelled_morning() -> None:
    params, model = pilot_day.plan(pilot_day.parse_args([]))
    # 250 concurrent nationally for 5.6 M inhabitants, 20 x 15,000 inhabitants, uptake 1.5: ~20 at the peak.
    assert model["peak_concurrent_model"] == 20.1
    assert model["population"] == 300_000
    assert params["clinicians"] == 25  # 1.2 x the peak, rounded up
    # Little's law: 60 % of 20.1 at 12 min and 40 % at 20 min -> 1.0 + 0.4 arrivals a minute, 71 % of them video.
    assert params["peak_arrivals_per_min"] == pytest.approx(1.406, abs=0.001)
    assert params["video_share"] == pytest.approx(0.714, abs=0.001)

    smoke, _ = pilot_day.plan(pilot_day.parse_args(SMOKE_ARGS["pilot_day"]))
    assert smoke["time_scale"] == 120 and 0 < smoke["video_share"] < 1 and smoke["clinicians"] >= 1


def test_pilot_day_arrivals_follow_the_morning_curve() -> None:
    peak_per_min = 100.0
    schedule = pilot_day.arrival_plan(peak_per_min, 0.25, random.Random(1))
    hours = [h for h, _ in schedule]
    assert hours == sorted(hours) and hours[0] >= 8.0 and hours[-1] < 9.75  # none after 09:45
    ramp = sum(h < 8.5 for h in hours)
    peak = sum(8.5 <= h for h in hours)
    # The rate rises from 30 % to 100 % over 08:00-08:30 (65 % of the peak's on average), then the peak to 09:45.
    assert ramp == pytest.approx(peak_per_min * 30 * 0.65, rel=0.06)
    assert peak == pytest.approx(peak_per_min * 75, rel=0.04)
    assert sum(h < 8.1 for h in hours) < sum(8.4 <= h < 8.5 for h in hours) / 2  # slow start, not a step
    video = sum(channel == "video" for _, channel in schedule)
    assert video / len(schedule) == pytest.approx(0.25, abs=0.02)


def test_queue_rush_plans_its_citizens_over_the_rush() -> None:
    args = queue_rush.parse_args(SMOKE_ARGS["queue_rush"])
    params = queue_rush.plan(args)
    assert params == {"citizens": 5, "rush_s": 20.0, "clinicians": 2, "service_s": 240.0, "poll_s": 30.0,
                      "dashboard_s": 15.0, "tail_s": 20.0, "time_scale": 10.0}
    at = queue_rush.arrivals(10_000, 30.0, random.Random(1))
    assert len(at) == 10_000 and at == sorted(at) and 0 <= at[0] and at[-1] <= 30.0
    # a uniform rate to the end: no pile-up of late arrivals at the last second
    assert sum(t >= 29.0 for t in at) == pytest.approx(10_000 / 30, rel=0.2)


@pytest.mark.parametrize("name", ["queue_rush", "pilot_day"])
def test_a_sampled_scenario_gives_its_load_generator_a_run_command(name: str) -> None:
    handlers = _scenario(name).load_generator()
    assert set(handlers) == {"run"} and inspect.iscoroutinefunction(handlers["run"])


def test_the_ramp_load_generator_answers_the_ramps_commands() -> None:
    from load_tests.media_bench import load_generator

    handlers = load_generator()
    assert {"setup", "add", "measure"} <= set(handlers)
    assert all(inspect.iscoroutinefunction(handlers[c]) for c in ("setup", "add", "measure"))
