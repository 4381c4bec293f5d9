"""Statistics counted at the event: a scripted day, checked figure by figure; they outlive the records."""

from datetime import date, datetime

from rooms.models import Channel, Outcome, Priority, Role
from rooms.stats import DURATION_BOUNDS_S, WAIT_BOUNDS_S, percentile, to_csv
from rooms.tenants import OSLO

T = "oslo"
DAY = date(2026, 3, 10)


def at(hh: int, mm: int = 0, ss: int = 0) -> float:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=OSLO).timestamp()


async def _join(store, owner, channel=Channel.VIDEO, service="nettlege", role=Role.CITIZEN):
    return await store.queue.join(T, service, owner=owner, owner_role=role, owner_name=f"Navn {owner}",
                                  channel=channel, reason="hoste", priority=Priority.GREEN,
                                  callback_phone="+4791234567" if channel == Channel.PHONE else None)


async def _take(store, service="nettlege"):
    return await store.queue.take_next(T, service, clinician="dr", clinician_role=Role.CLINICIAN,
                                       clinician_name="Dr")


async def _end(store, clock, cid, outcome, talk_s=None):
    if talk_s is not None:
        await store.consultations.activate(T, cid)
        clock.advance(talk_s)
    await store.consultations.end(T, cid, outcome)


async def scripted_day(store, clock) -> None:
    clock.now = at(8)
    tickets = {}
    for owner, channel in [("a", Channel.VIDEO), ("b", Channel.CHAT), ("c", Channel.PHONE), ("d", Channel.VIDEO),
                           ("f", Channel.CHAT), ("g", Channel.VIDEO)]:
        tickets[owner] = await _join(store, owner, channel)
        clock.advance(1)  # distinct enqueue times: they are taken in this order
    await _join(store, "nurse-1", Channel.VIDEO, service="legevakt", role=Role.NURSE)
    clock.now = at(8, 0, 10)
    _, lv = await _take(store, "legevakt")                                 # wait 10 s
    await _end(store, clock, lv.id, Outcome.EMERGENCY, talk_s=240)         # 4 min
    clock.now = at(8, 1, 40)
    _, ca = await _take(store)                                             # a: wait 100 s (joined 08:00:00)
    await _end(store, clock, ca.id, Outcome.RESOLVED, talk_s=500)          # 8 min 20
    clock.now = at(8, 5)
    await store.queue.leave(tickets["b"])
    await store.queue.disconnected(T, tickets["f"].id)
    clock.now = at(8, 9)
    assert [t.id for t in await store.queue.abandon_expired(T, grace_s=120)] == [tickets["f"].id]
    clock.now = at(8, 10)
    _, cc = await _take(store)                                             # c: wait 598 s
    await _end(store, clock, cc.id, Outcome.PHYSICAL_FOLLOWUP, talk_s=900)
    clock.now = at(8, 30)
    _, cd = await _take(store)                                             # d: wait 1797 s
    await _end(store, clock, cd.id, Outcome.REFERRED, talk_s=50)
    clock.now = at(9)
    _, cg = await _take(store)                                             # g: wait 3595 s
    await _end(store, clock, cg.id, Outcome.RESOLVED)                       # never started: no duration
    booked = await store.consultations.create(T, "nettlege", creator="booker", creator_role=Role.BOOKING,
                                              creator_name="", scheduled_at=at(10))
    clock.now = at(10, 30)
    await store.consultations.end(T, booked.id, Outcome.NO_SHOW)


async def test_scripted_day_figure_by_figure(store, clock):
    await scripted_day(store, clock)
    report = await store.stats.report(T, ["nettlege", "legevakt", "stengt"], DAY, DAY)
    nl, lv, closed = report["services"]
    assert nl["tickets"] == {"joined": 6, "taken": 4, "left": 1, "abandoned": 1}
    assert nl["channels"] == {"video": 3, "chat": 2, "phone": 1}
    # waits 100, 598, 1797, 3595 s fall in the buckets (60,120], (300,600], (1200,1800], (2700,3600]:
    # p50 = rank 2 = top of (300,600] = 600; p90 = rank 3.6, 0.6 into (2700,3600] = 3240
    assert nl["wait_s"] == {"p50": 600.0, "p90": 3240.0}
    assert nl["consultations"]["ended"] == 5
    assert nl["consultations"]["outcomes"] == {"resolved": 2, "physical-followup": 1, "referred": 1,
                                               "emergency": 0, "no-show": 1}
    # durations 500, 900, 50 s (the unstarted and the no-show have none): (300,600], (600,900], (0,60]
    # p50 = rank 1.5 = halfway into (300,600] = 450; p90 = rank 2.7 = 0.7 into (600,900] = 810
    assert nl["consultations"]["duration_s"] == {"p50": 450.0, "p90": 810.0}
    assert nl["remote_doctor"] == {"requested": 0, "taken": 0}
    hours = {h["hour"]: (h["joined"], h["taken"]) for h in nl["by_hour"] if h["joined"] or h["taken"]}
    assert hours == {8: (6, 3), 9: (0, 1)}
    assert len(nl["by_hour"]) == 24

    assert lv["tickets"] == {"joined": 1, "taken": 1, "left": 0, "abandoned": 0}
    assert lv["remote_doctor"] == {"requested": 1, "taken": 1}
    assert lv["wait_s"] == {"p50": 7.5, "p90": 13.5}  # one wait of 10 s in (0,15]
    assert lv["consultations"]["outcomes"]["emergency"] == 1
    assert closed["tickets"] == {"joined": 0, "taken": 0, "left": 0, "abandoned": 0}
    assert closed["wait_s"] == {"p50": None, "p90": None}


async def test_figures_outlive_the_records_they_count(store, clock, redis_client):
    await scripted_day(store, clock)
    before = await store.stats.report(T, ["nettlege", "legevakt"], DAY, DAY)
    # retention: every ticket, consultation, participant and audit key is gone; only the counters stay
    async for key in redis_client.scan_iter(match="nl:{oslo}:*"):
        if ":stats:" not in key:
            await redis_client.delete(key)
    after = await store.stats.report(T, ["nettlege", "legevakt"], DAY, DAY)
    assert after == before and after["services"][0]["tickets"]["joined"] == 6
    # the counters hold counts only: no ids of tickets, consultations or people
    async for key in redis_client.scan_iter(match="nl:{oslo}:stats:*"):
        fields = await redis_client.hkeys(key)
        assert not [f for f in fields if "t_" in f or "c_" in f or "dr" in f or "nurse-1" in f]


async def test_days_are_europe_oslo_calendar_days(store, clock):
    clock.now = at(0, 30)  # 23:30 UTC the day before: still counted on DAY
    await _join(store, "early")
    clock.now = at(23, 59)
    await _join(store, "late")
    report = await store.stats.report(T, ["nettlege"], DAY, DAY)
    assert report["services"][0]["tickets"]["joined"] == 2
    assert [h["hour"] for h in report["services"][0]["by_hour"] if h["joined"]] == [0, 23]
    prev = await store.stats.report(T, ["nettlege"], date(2026, 3, 9), date(2026, 3, 9))
    assert prev["services"][0]["tickets"]["joined"] == 0


async def test_a_period_sums_its_days(store, clock):
    for i, d in enumerate((9, 10, 11)):
        clock.now = datetime(2026, 3, d, 12, tzinfo=OSLO).timestamp()
        await _join(store, f"o{i}")
    report = await store.stats.report(T, ["nettlege"], date(2026, 3, 9), date(2026, 3, 10))
    assert report["services"][0]["tickets"]["joined"] == 2
    assert report["from"] == "2026-03-09" and report["to"] == "2026-03-10"


def test_percentile_estimates():
    assert percentile([0] * (len(WAIT_BOUNDS_S) + 1), WAIT_BOUNDS_S, 0.5) is None
    # everything above the last bound: the estimate is that bound (it cannot be bettered)
    counts = [0] * len(DURATION_BOUNDS_S) + [3]
    assert percentile(counts, DURATION_BOUNDS_S, 0.9) == DURATION_BOUNDS_S[-1]
    # 10 in (0,15]: p50 interpolates to 7.5
    assert percentile([10] + [0] * len(WAIT_BOUNDS_S), WAIT_BOUNDS_S, 0.5) == 7.5


async def test_csv_suppresses_counts_one_to_four(store, clock):
    await scripted_day(store, clock)
    report = await store.stats.report(T, ["nettlege", "legevakt"], DAY, DAY)
    rows = [line.split(",") for line in to_csv(report).strip().split("\n")]
    assert rows[0] == ["tenant", "from", "to", "service", "figure", "value"]
    values = {(r[3], r[4]): r[5] for r in rows[1:]}
    assert values[("nettlege", "tickets.joined")] == "6"          # 6: written as is
    assert values[("nettlege", "tickets.taken")] == "<5"          # 4
    assert values[("nettlege", "tickets.left")] == "<5"           # 1
    assert values[("nettlege", "consultations.ended")] == "5"
    assert values[("nettlege", "consultations.outcomes.emergency")] == "0"  # 0 is no small cell
    assert values[("nettlege", "by_hour.08.joined")] == "6"
    assert values[("nettlege", "by_hour.08.taken")] == "<5"
    # percentiles resting on 1..4 tickets are left empty
    assert values[("nettlege", "wait_s.p50")] == ""
    assert values[("legevakt", "remote_doctor.requested")] == "<5"
    assert all(v == "" or v == "<5" or v.replace(".", "").isdigit() for v in values.values())
