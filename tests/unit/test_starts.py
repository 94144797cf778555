"""Window start times: SSM cron evaluated in a time zone with offsets, collisions, stagger."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from tagpatch.reconciler.schedule import ScheduleError, validate_schedule
from tagpatch.reconciler.starts import (
    DEFAULT_CONCURRENT_LIMIT,
    Collision,
    WindowStart,
    collisions_by_window,
    describe,
    next_starts,
    stagger,
    stagger_slot,
    start_collisions,
)

DEFAULT = "cron(0 3 ? * SUN *)"
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)  # a Tuesday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def starts(
    schedule: str, after: datetime, days: int, timezone: str = "UTC", offset: int = 0
) -> list[datetime]:
    return next_starts(schedule, timezone, offset, after, timedelta(days=days))


# --------------------------------------------------------------------------------------------
# next_starts: the basics
# --------------------------------------------------------------------------------------------
def test_the_default_schedule_starts_every_sunday_at_three_utc() -> None:
    assert starts(DEFAULT, DEC_1, 35) == [
        utc(2026, 12, 6, 3),
        utc(2026, 12, 13, 3),
        utc(2026, 12, 20, 3),
        utc(2026, 12, 27, 3),
        utc(2027, 1, 3, 3),
    ]


def test_the_range_includes_after_and_excludes_its_end() -> None:
    sunday = utc(2026, 12, 6, 3)
    assert starts(DEFAULT, sunday, 7) == [sunday]
    assert next_starts(DEFAULT, "UTC", 0, sunday + timedelta(seconds=1), timedelta(days=7)) == [
        sunday + timedelta(days=7)
    ]
    assert next_starts(DEFAULT, "UTC", 0, sunday + timedelta(seconds=1), timedelta(days=7, seconds=-1)) == []
    assert next_starts(DEFAULT, "UTC", 0, sunday - timedelta(days=7), timedelta(days=7)) == [
        sunday - timedelta(days=7)
    ]


def test_an_empty_or_negative_horizon_has_no_start() -> None:
    assert next_starts(DEFAULT, "UTC", 0, DEC_1, timedelta(0)) == []
    assert next_starts(DEFAULT, "UTC", 0, DEC_1, timedelta(days=-7)) == []


def test_an_empty_time_zone_is_utc_as_in_ssm() -> None:
    assert starts(DEFAULT, DEC_1, 7, timezone="") == [utc(2026, 12, 6, 3)]
    assert starts(DEFAULT, DEC_1, 7, timezone="Etc/UTC") == [utc(2026, 12, 6, 3)]


def test_after_in_another_zone_is_the_same_instant() -> None:
    from zoneinfo import ZoneInfo

    tokyo = DEC_1.astimezone(ZoneInfo("Asia/Tokyo"))
    assert starts(DEFAULT, tokyo, 35) == starts(DEFAULT, DEC_1, 35)


def test_a_time_zone_moves_the_start_in_utc() -> None:
    # Asia/Kolkata is UTC+05:30 all year: 03:00 local is 21:30 UTC the day before
    assert starts(DEFAULT, DEC_1, 7, timezone="Asia/Kolkata") == [utc(2026, 12, 5, 21, 30)]


def test_lists_ranges_and_steps() -> None:
    # every 15 minutes: 96 starts a day
    assert len(starts("cron(0/15 * ? * * *)", DEC_1, 1)) == 96
    assert starts("cron(10,40 6 ? * * *)", DEC_1, 1) == [utc(2026, 12, 1, 6, 10), utc(2026, 12, 1, 6, 40)]
    assert starts("cron(5/20 8-9 ? * * *)", DEC_1, 1) == [
        utc(2026, 12, 1, hour, minute) for hour in (8, 9) for minute in (5, 25, 45)
    ]
    # an hour range wrapping past midnight: 22, 23, 0, 1 (Tue 1 December is the first day)
    assert [s.hour for s in starts("cron(0 22-1 ? * TUE *)", DEC_1, 1)] == [0, 1, 22, 23]
    # month names and a month step
    first_days = starts("cron(0 0 1 JAN,JUL ? *)", utc(2026, 1, 1), 365)
    assert first_days == [utc(2026, 1, 1), utc(2026, 7, 1)]
    assert [s.month for s in starts("cron(0 0 1 2/3 ? *)", utc(2026, 1, 1), 365)] == [2, 5, 8, 11]


def test_the_seven_field_form_reports_the_minute() -> None:
    # SSM's own example: seconds 24, minute 30, hour 09, every day
    assert starts("cron(24 30 09 ? * * *)", DEC_1, 2) == [utc(2026, 12, 1, 9, 30), utc(2026, 12, 2, 9, 30)]


def test_lower_case_names_are_read() -> None:
    assert starts("cron(0 3 ? * sun *)", DEC_1, 7) == [utc(2026, 12, 6, 3)]


def test_the_year_field_limits_the_years() -> None:
    # SSM's example: 04:00 on the 1st and 15th of each month of 2027
    assert starts("cron(0 4 1,15 * ? 2027)", DEC_1, 60) == [
        utc(2027, 1, 1, 4),
        utc(2027, 1, 15, 4),
    ]
    assert starts("cron(0 4 1,15 * ? 2026)", DEC_1, 60) == [utc(2026, 12, 1, 4), utc(2026, 12, 15, 4)]
    assert starts("cron(0 4 1,15 * ? 2030-2031)", DEC_1, 365) == []


# --------------------------------------------------------------------------------------------
# time zones and daylight saving time
# --------------------------------------------------------------------------------------------
def test_new_york_in_march_starts_an_hour_earlier_in_utc_after_the_change() -> None:
    # DST starts Sunday 8 March 2026 at 02:00 (EST, UTC-5 -> EDT, UTC-4)
    assert starts(DEFAULT, utc(2026, 3, 1), 21, timezone="America/New_York") == [
        utc(2026, 3, 1, 8),  # 03:00 EST
        utc(2026, 3, 8, 7),  # 03:00 EDT, the day of the change
        utc(2026, 3, 15, 7),
    ]


def test_a_start_in_the_skipped_hour_runs_when_the_clock_has_moved_on() -> None:
    # 02:30 does not exist on 8 March 2026 in New York: taken with the offset before the change
    assert starts("cron(30 2 ? * SUN *)", utc(2026, 3, 1), 21, timezone="America/New_York") == [
        utc(2026, 3, 1, 7, 30),
        utc(2026, 3, 8, 7, 30),  # = 03:30 EDT
        utc(2026, 3, 15, 6, 30),
    ]


def test_a_start_in_the_repeated_hour_runs_once_at_its_first_occurrence() -> None:
    # 01:30 happens twice on 1 November 2026 in New York (EDT, then EST)
    assert starts("cron(30 1 ? * SUN *)", utc(2026, 10, 25), 14, timezone="America/New_York") == [
        utc(2026, 10, 25, 5, 30),
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; 01:30 EST (06:30 UTC) is not a second start
    ]


def test_hours_either_side_of_the_skipped_hour_stay_distinct() -> None:
    # 01:00, 02:00 (skipped: 03:00 EDT by the clock) and 03:00 on the day of the change
    day = starts("cron(0 1-3 8 MAR ? *)", utc(2026, 3, 1), 14, timezone="America/New_York")
    assert day == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)]  # 02:00 EST is 03:00 EDT: one start


def test_the_southern_hemisphere_changes_the_other_way() -> None:
    # Australia/Sydney: AEDT (UTC+11) until Sunday 5 April 2026 03:00, then AEST (UTC+10)
    assert starts("cron(0 4 ? * SUN *)", utc(2026, 3, 28), 14, timezone="Australia/Sydney") == [
        utc(2026, 3, 28, 17),
        utc(2026, 4, 4, 18),
    ]


# --------------------------------------------------------------------------------------------
# ScheduleOffset
# --------------------------------------------------------------------------------------------
def test_patch_tuesday_plus_two_days_in_berlin() -> None:
    # 2nd Tuesday: 8 Dec 2026 and 12 Jan 2027; + 2 days at 02:00 CET (UTC+1)
    assert starts("cron(0 2 ? * TUE#2 *)", DEC_1, 70, timezone="Europe/Berlin", offset=2) == [
        utc(2026, 12, 10, 1),
        utc(2027, 1, 14, 1),
    ]


def test_ssms_offset_example_third_tuesday_plus_two() -> None:
    # the SSM User Guide's example: cron(30 23 ? * TUE#3 *) with offset 2 runs two days later
    assert starts("cron(30 23 ? * TUE#3 *)", DEC_1, 31, offset=2) == [utc(2026, 12, 17, 23, 30)]


def test_an_offset_crosses_the_month_and_the_year() -> None:
    # last day of the month at 23:00, one day later: the 1st of the next month (30 November
    # gives 1 December, inside the range; 31 January's 1 February is past its end)
    assert starts("cron(0 23 L * ? *)", DEC_1, 62, offset=1) == [
        utc(2026, 12, 1, 23),
        utc(2027, 1, 1, 23),
    ]


def test_a_cron_date_before_the_range_can_start_inside_it() -> None:
    # the 2nd Tuesday of December 2026 is the 8th; +6 days is Monday the 14th
    assert starts("cron(0 2 ? * TUE#2 *)", utc(2026, 12, 13), 3, offset=6) == [utc(2026, 12, 14, 2)]


def test_an_offset_keeps_the_local_time_across_a_dst_change() -> None:
    # Saturday 7 March 2026 03:00 EST + 1 day = Sunday 8 March 03:00 EDT
    assert starts("cron(0 3 ? * SAT *)", utc(2026, 3, 7), 2, timezone="America/New_York", offset=1) == [
        utc(2026, 3, 8, 7)
    ]


def test_at_and_rate_take_no_offset() -> None:
    assert starts("at(2026-12-06T03:00:00)", DEC_1, 7, offset=2) == [utc(2026, 12, 6, 3)]


# --------------------------------------------------------------------------------------------
# L, W and # forms
# --------------------------------------------------------------------------------------------
def dates(schedule: str, after: datetime, days: int) -> list[date]:
    return [start.date() for start in starts(schedule, after, days)]


def test_day_of_month_last_forms() -> None:
    feb_2028 = utc(2028, 2, 1)  # a leap year
    assert dates("cron(0 2 L * ? *)", feb_2028, 29) == [date(2028, 2, 29)]
    assert dates("cron(0 2 L-2 * ? *)", feb_2028, 29) == [date(2028, 2, 27)]
    assert dates("cron(0 2 LW * ? *)", feb_2028, 29) == [date(2028, 2, 29)]  # a Tuesday
    # January 2027 ends on a Sunday: its last weekday is Friday the 29th
    assert dates("cron(0 2 LW * ? *)", utc(2027, 1, 1), 31) == [date(2027, 1, 29)]
    # L-n beyond the month's first day never matches
    assert dates("cron(0 2 L-30 * ? *)", feb_2028, 29) == []


def test_nearest_weekday_stays_in_its_month() -> None:
    august = utc(2026, 8, 1)  # Saturday 1st, Saturday 15th, Sunday 16th, Monday 31st
    assert dates("cron(0 2 1W * ? *)", august, 31) == [date(2026, 8, 3)]  # not Friday 31 July
    assert dates("cron(0 2 15W * ? *)", august, 31) == [date(2026, 8, 14)]
    assert dates("cron(0 2 16W * ? *)", august, 31) == [date(2026, 8, 17)]
    assert dates("cron(0 2 31W * ? *)", august, 31) == [date(2026, 8, 31)]
    # Sunday 31 January 2027: Friday the 29th, not Monday 1 February
    assert dates("cron(0 2 31W * ? *)", utc(2027, 1, 1), 31) == [date(2027, 1, 29)]
    # November has no 31st: no start that month
    assert dates("cron(0 2 31W * ? *)", utc(2026, 11, 1), 30) == []


def test_day_of_week_last_and_nth_forms() -> None:
    january = utc(2027, 1, 1)  # Fridays 1, 8, 15, 22, 29; Mondays 4 ... 25
    assert dates("cron(0 2 ? * 6L *)", january, 31) == [date(2027, 1, 29)]
    assert dates("cron(0 2 ? * FRIL *)", january, 31) == [date(2027, 1, 29)]
    assert dates("cron(0 2 ? * MON#1 *)", january, 31) == [date(2027, 1, 4)]
    assert dates("cron(0 2 ? * 2#5 *)", january, 31) == []  # no fifth Monday
    assert dates("cron(0 2 ? * 2#5 *)", utc(2026, 3, 1), 31) == [date(2026, 3, 30)]
    # L alone is the week's last day, Saturday (1=SUN..7=SAT)
    assert dates("cron(0 2 ? * L *)", january, 14) == [date(2027, 1, 2), date(2027, 1, 9)]
    assert dates("cron(0 2 ? * 1 *)", january, 7) == [date(2027, 1, 3)]  # 1 is Sunday
    assert dates("cron(0 2 ? * 7 *)", january, 7) == [date(2027, 1, 2)]  # 7 is Saturday


def _month(day: date) -> list[date]:
    return [date(day.year, day.month, n) for n in range(1, calendar.monthrange(day.year, day.month)[1] + 1)]


def _weekdays(day: date, weekday: int) -> list[date]:
    return [other for other in _month(day) if other.weekday() == weekday]


def _nearest(day: date, n: int) -> bool:
    weekdays = [other for other in _month(day) if other.weekday() < 5]
    if n > len(_month(day)):
        return False
    return day == min(weekdays, key=lambda other: abs(other.day - n))


ORACLES: list[tuple[str, Callable[[date], bool]]] = [
    ("cron(0 0 LW * ? *)", lambda d: d == [o for o in _month(d) if o.weekday() < 5][-1]),
    ("cron(0 0 L-3 * ? *)", lambda d: d.day == len(_month(d)) - 3),
    ("cron(0 0 1W * ? *)", lambda d: _nearest(d, 1)),
    ("cron(0 0 15W * ? *)", lambda d: _nearest(d, 15)),
    ("cron(0 0 30W * ? *)", lambda d: _nearest(d, 30)),
    ("cron(0 0 31W * ? *)", lambda d: _nearest(d, 31)),
    ("cron(0 0 ? * 6L *)", lambda d: d == _weekdays(d, 4)[-1]),
    ("cron(0 0 ? * SUNL *)", lambda d: d == _weekdays(d, 6)[-1]),
    ("cron(0 0 ? * TUE#2 *)", lambda d: d == _weekdays(d, 1)[1]),
    ("cron(0 0 ? * 5#4 *)", lambda d: d == _weekdays(d, 3)[3]),
    ("cron(0 0 ? * MON-FRI *)", lambda d: d.weekday() < 5),
    ("cron(0 0 ? * FRI-MON *)", lambda d: d.weekday() in (4, 5, 6, 0)),
    ("cron(0 0 1/10 JAN,JUL ? *)", lambda d: d.month in (1, 7) and d.day in (1, 11, 21, 31)),
    ("cron(0 0 ? 2/3 L 2027)", lambda d: d.year == 2027 and d.month in (2, 5, 8, 11) and d.weekday() == 5),
    ("cron(0 0 L,15 * ? *)", lambda d: d.day in (15, len(_month(d)))),
]


@pytest.mark.parametrize(("schedule", "oracle"), ORACLES, ids=[schedule for schedule, _ in ORACLES])
def test_day_rules_agree_with_the_calendar_over_two_years(
    schedule: str, oracle: Callable[[date], bool]
) -> None:
    # Given every day of 2026 and 2027, judged by the calendar module
    first = date(2026, 1, 1)
    expected = [first + timedelta(days=n) for n in range(730) if oracle(first + timedelta(days=n))]

    # Then the cron evaluation starts on exactly those days, at midnight
    assert starts(schedule, utc(2026, 1, 1), 730) == [
        datetime.combine(day, datetime.min.time(), tzinfo=UTC) for day in expected
    ]


def test_a_long_horizon_is_evaluated_day_by_day() -> None:
    # ten years of a daily schedule: one start a day, in order, none repeated
    ten_years = starts("cron(0 3 * * ? *)", utc(2026, 1, 1), 3652)
    assert len(ten_years) == 3652
    assert ten_years == sorted(set(ten_years))


# --------------------------------------------------------------------------------------------
# at, rate and bad input
# --------------------------------------------------------------------------------------------
def test_at_is_one_start_in_the_windows_time_zone() -> None:
    assert starts("at(2026-12-06T03:00:00)", DEC_1, 7) == [utc(2026, 12, 6, 3)]
    assert starts("at(2026-12-06T03:00:45)", DEC_1, 7) == [utc(2026, 12, 6, 3)]  # its minute
    assert starts("at(2026-12-06T03:00:00)", DEC_1, 7, timezone="Europe/Berlin") == [utc(2026, 12, 6, 2)]
    assert starts("at(2026-12-06T03:00:00)", utc(2026, 12, 7), 7) == []  # already past


def test_rate_is_unknown() -> None:
    assert starts("rate(7 days)", DEC_1, 35) == []


@pytest.mark.parametrize(
    ("schedule", "timezone", "offset", "after", "error", "message"),
    [
        ("cron(0 3 * * * *)", "UTC", 0, DEC_1, ScheduleError, "exactly one of"),
        ("every sunday", "UTC", 0, DEC_1, ScheduleError, "is not cron"),
        (DEFAULT, "Mars/Olympus_Mons", 0, DEC_1, ValueError, "time zone 'Mars/Olympus_Mons' is unknown"),
        (DEFAULT, "/etc/localtime", 0, DEC_1, ValueError, "is unknown"),
        (DEFAULT, "UTC", 0, datetime(2026, 12, 1), ValueError, "timezone-aware"),
        (DEFAULT, "UTC", -1, DEC_1, ValueError, "offset_days must be 0 or more"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    schedule: str, timezone: str, offset: int, after: datetime, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        next_starts(schedule, timezone, offset, after, timedelta(days=7))


# --------------------------------------------------------------------------------------------
# collisions
# --------------------------------------------------------------------------------------------
def windows(
    count: int, schedule: str = DEFAULT, timezone: str = "UTC", prefix: str = "mw-"
) -> list[WindowStart]:
    return [WindowStart(f"{prefix}{n:02d}", schedule, timezone) for n in range(count)]


def test_exactly_the_limit_starting_together_is_fine() -> None:
    assert start_collisions(windows(5), 5, DEC_1) == []


def test_one_more_than_the_limit_collides_every_time_they_start() -> None:
    # Given 6 windows on the default schedule
    collisions = start_collisions(windows(6), 5, DEC_1)

    # Then each of the 5 Sundays in 35 days is a collision of all 6, described for the operator
    assert [c.minute for c in collisions] == starts(DEFAULT, DEC_1, 35)
    assert all(c.window_ids == tuple(f"mw-{n:02d}" for n in range(6)) for c in collisions)
    assert collisions[0] == Collision(
        utc(2026, 12, 6, 3),
        tuple(f"mw-{n:02d}" for n in range(6)),
        "6 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 5 at once",
    )


def test_the_limit_is_the_callers() -> None:
    assert start_collisions(windows(2), 1, DEC_1)[0].description == (
        "2 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 1 at once"
    )
    assert start_collisions(windows(6), 6, DEC_1) == []
    assert DEFAULT_CONCURRENT_LIMIT == 5


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        start_collisions(windows(1), 0, DEC_1)


def test_windows_in_different_zones_collide_on_the_same_utc_minute() -> None:
    # 04:00 in Berlin in December is 03:00 UTC, as the 5 UTC windows
    berlin = WindowStart("mw-berlin", "cron(0 4 ? * SUN *)", "Europe/Berlin")
    collisions = start_collisions([*windows(5), berlin], 5, DEC_1)
    assert len(collisions) == 5
    assert "mw-berlin" in collisions[0].window_ids


def test_a_window_given_twice_counts_once() -> None:
    assert start_collisions([*windows(5), windows(1)[0]], 5, DEC_1) == []


def test_unknown_disabled_and_unreadable_windows_count_in_no_minute() -> None:
    others = [
        WindowStart("mw-rate", "rate(7 days)"),
        WindowStart("mw-off", DEFAULT, enabled=False),
        WindowStart("mw-bad", "cron(0 3 * * * *)"),
        WindowStart("mw-zone", DEFAULT, "Nowhere/Land"),
    ]
    assert start_collisions([*windows(5), *others], 5, DEC_1) == []


def test_offsets_and_times_that_differ_do_not_collide() -> None:
    spread = [
        *windows(3),
        WindowStart("mw-offset", "cron(0 3 ? * SAT *)", offset=1),  # also Sunday 03:00
        WindowStart("mw-later", "cron(5 3 ? * SUN *)"),
        WindowStart("mw-monday", DEFAULT, offset=1),
    ]
    assert start_collisions(spread, 3, DEC_1)[0].window_ids == ("mw-00", "mw-01", "mw-02", "mw-offset")
    assert start_collisions(spread, 4, DEC_1) == []


def test_the_horizon_bounds_the_search() -> None:
    monthly = [WindowStart(f"mw-{n}", "cron(0 3 L * ? *)") for n in range(6)]
    assert start_collisions(monthly, 5, DEC_1, horizon=timedelta(days=7)) == []
    assert [c.minute for c in start_collisions(monthly, 5, DEC_1)] == [utc(2026, 12, 31, 3)]


def test_collisions_by_window_gives_each_window_its_first_collision() -> None:
    # Given 6 windows on Sundays, 6 others on the 31st of December, one alone on Mondays
    sundays = windows(6)
    new_year = windows(6, "cron(0 3 31 DEC ? *)", prefix="mw-nye-")
    alone = WindowStart("mw-alone", "cron(0 3 ? * MON *)")

    by_window = collisions_by_window([*sundays, *new_year, alone], 5, DEC_1)

    assert set(by_window) == {w.window_id for w in [*sundays, *new_year]}
    assert by_window["mw-00"] == "6 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 5 at once"
    assert by_window["mw-nye-00"] == "6 windows start at Thu 2026-12-31 03:00 UTC; SSM runs 5 at once"


def test_describe_names_the_utc_day_whatever_the_zone() -> None:
    from zoneinfo import ZoneInfo

    moment = utc(2026, 12, 6, 3).astimezone(ZoneInfo("Pacific/Auckland"))  # Sunday 16:00 there
    assert describe(7, moment, 5) == "7 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 5 at once"


def test_one_hundred_default_groups_are_five_windows_and_fit_the_quota() -> None:
    # the arithmetic: 20 groups a window, 100 groups = 5 windows; 101 = 6 windows
    assert start_collisions(windows(-(-100 // 20)), 5, DEC_1) == []
    assert len(start_collisions(windows(-(-101 // 20)), 5, DEC_1)) == 5


# --------------------------------------------------------------------------------------------
# stagger
# --------------------------------------------------------------------------------------------
def _slot(key: str, slots: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % slots


def test_stagger_is_sha256_of_the_key_times_the_spacing() -> None:
    for key in ("web", "db", "Batch Jobs", "ünïcode", ""):
        shift = _slot(key, 4) * 30
        expected = DEFAULT if shift == 0 else f"cron({shift % 60} {3 + shift // 60} ? * SUN *)"
        assert stagger(DEFAULT, key, 4) == expected
        assert stagger_slot(key, 4) == _slot(key, 4)


def test_stagger_is_the_same_every_time() -> None:
    assert {stagger(DEFAULT, "web", 8) for _ in range(5)} == {stagger(DEFAULT, "web", 8)}


def test_stagger_spreads_keys_over_every_slot_within_bounds() -> None:
    # Given 200 group names and 4 slots of 30 minutes
    results = {f"group-{n}": stagger(DEFAULT, f"group-{n}", 4) for n in range(200)}

    # Then every slot is used, each shift is 0, 30, 60 or 90 minutes, and each result is valid
    assert set(results.values()) == {
        "cron(0 3 ? * SUN *)",
        "cron(30 3 ? * SUN *)",
        "cron(0 4 ? * SUN *)",
        "cron(30 4 ? * SUN *)",
    }
    assert all(validate_schedule(schedule) == schedule for schedule in results.values())


def test_stagger_carries_minutes_into_hours_with_any_spacing() -> None:
    key = next(f"k{n}" for n in range(100) if _slot(f"k{n}", 2) == 1)
    assert stagger("cron(45 3 ? * SUN *)", key, 2) == "cron(15 4 ? * SUN *)"
    assert stagger("cron(45 3 ? * SUN *)", key, 2, spacing_minutes=20) == "cron(5 4 ? * SUN *)"


def test_stagger_never_leaves_the_day() -> None:
    # 22:00 with 30 minutes: only 22:00, 22:30, 23:00 and 23:30 fit, whatever the slot count
    late = {stagger("cron(0 22 ? * TUE#2 *)", f"g{n}", 48) for n in range(300)}
    assert late == {f"cron({m} {h} ? * TUE#2 *)" for h, m in ((22, 0), (22, 30), (23, 0), (23, 30))}
    # 23:59 has no room: unchanged
    assert {stagger("cron(59 23 ? * SUN *)", f"g{n}", 4) for n in range(20)} == {"cron(59 23 ? * SUN *)"}


def test_stagger_keeps_the_days_the_year_and_the_seconds() -> None:
    key = next(f"k{n}" for n in range(100) if _slot(f"k{n}", 2) == 1)
    assert stagger("cron(0 2 L * ? 2027)", key, 2) == "cron(30 2 L * ? 2027)"
    assert stagger("cron(15 0 2 ? * MON#1 *)", key, 2) == "cron(15 30 2 ? * MON#1 *)"


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(7 days)",
        "at(2026-12-06T03:00:00)",
        "cron(0/30 3 ? * SUN *)",  # a step: shifting it would change how often it runs
        "cron(0 1,13 ? * SUN *)",  # a list
        "cron(0 1-3 ? * SUN *)",  # a range
        "cron(0 * ? * SUN *)",
    ],
)
def test_stagger_leaves_what_it_cannot_shift_alone(schedule: str) -> None:
    assert {stagger(schedule, f"g{n}", 4) for n in range(20)} == {schedule}


def test_one_slot_or_none_is_off() -> None:
    assert {stagger(DEFAULT, f"g{n}", slots) for n in range(20) for slots in (-1, 0, 1)} == {DEFAULT}


def test_stagger_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="spacing_minutes must be at least 1"):
        stagger(DEFAULT, "web", 4, spacing_minutes=0)
    with pytest.raises(ScheduleError, match="hours: 24 is outside"):
        stagger("cron(0 24 ? * SUN *)", "web", 4)


def test_staggered_groups_in_different_slots_no_longer_collide() -> None:
    # Given 12 groups, one window each for the sake of the example, staggered over 4 slots
    groups = [f"group-{n}" for n in range(12)]
    staggered = [WindowStart(f"mw-{g}", stagger(DEFAULT, g, 4)) for g in groups]

    # Then no minute has more windows than its slot's groups
    per_slot = [sum(1 for g in groups if _slot(g, 4) == slot) for slot in range(4)]
    busiest = max(per_slot)
    assert start_collisions(staggered, busiest, DEC_1) == []
    assert len(start_collisions(staggered, busiest - 1, DEC_1)) == 5  # the busiest slot, each Sunday
