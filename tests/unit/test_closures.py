"""Opening hours with closures (public holidays) set by an admin: closed all day, and the next opening skips them."""

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from rooms.tenants import OSLO, OpeningHours


def test_a_closure_closes_the_whole_day_and_the_next_opening_skips_it():
    hours = OpeningHours(default="08:00-22:00", closures=(date(2026, 12, 24), date(2026, 12, 25)))
    assert not hours.is_open(datetime(2026, 12, 24, 12, tzinfo=OSLO))
    assert not hours.is_open(datetime(2026, 12, 25, 9, tzinfo=OSLO))
    assert hours.is_open(datetime(2026, 12, 26, 9, tzinfo=OSLO))
    assert hours.next_opening(datetime(2026, 12, 23, 23, tzinfo=OSLO)) == datetime(2026, 12, 26, 8, tzinfo=OSLO)


def test_closures_are_days_in_europe_oslo():
    hours = OpeningHours(default="24/7", closures=(date(2026, 5, 17),))
    assert not hours.is_open(datetime(2026, 5, 16, 22, 30, tzinfo=UTC))  # 00:30 on 17 May in Oslo (summer time)
    assert hours.is_open(datetime(2026, 5, 16, 21, 59, tzinfo=UTC))  # 23:59 on 16 May in Oslo


def test_bad_closures_are_refused():
    for bad in (["17.05.2026"], ["2026-02-30"], ["i morgen"]):
        with pytest.raises(ValidationError):
            OpeningHours.model_validate({"closures": bad})
