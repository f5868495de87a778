"""The native databases do not depend on the wall clock: the gold tasks name birth dates and other
dates verbatim, so a database that moved with the calendar broke them a few days after they were
written (the bank's birth dates came from Faker's ``date_of_birth``, which counts from today)."""

from __future__ import annotations

import datetime as real_datetime
import importlib

import faker.providers.date_time as faker_dates
import pytest

from datagen.envs.store import canonical_json

DOMAINS = ("retail", "airline", "bank")


def _clock_at(day: real_datetime.date) -> type[real_datetime.datetime]:
    class FixedClock(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(day.year, day.month, day.day, 12, 0, tzinfo=tz)

    return FixedClock


@pytest.mark.parametrize("name", DOMAINS)
def test_database_is_the_same_on_any_day(name: str, monkeypatch: pytest.MonkeyPatch):
    build = importlib.import_module(f"datagen.envs.{name}.database").build_database
    builds = []
    for day in (real_datetime.date(2026, 1, 1), real_datetime.date(2031, 7, 19)):
        monkeypatch.setattr(faker_dates, "datetime", _clock_at(day))
        builds.append(canonical_json(build(1)))
    assert builds[0] == builds[1]
