"""When maintenance windows start, which starts collide, and how to spread default schedules.

Systems Manager runs a bounded number of maintenance window executions at once per account and
Region: 5 by default (Service Quotas for Maintenance Windows, "AWS Systems Manager endpoints and
quotas" in the AWS General Reference: https://docs.aws.amazon.com/general/latest/gr/ssm.html).
TagPatch gives every group the same default schedule and shares a window between up to 20 groups
with equal window settings, spilling into sibling windows with that same schedule, so 100 groups on
the default schedule are 5 windows starting in the same minute; the 101st makes it 6.

Pure functions, no AWS call:

* :func:`next_starts` evaluates a window schedule (SSM's ``cron(...)``, ``at(...)``; ``rate(...)``
  is unknown, its phase depends on when the window was created) in the window's IANA time zone,
  with ``ScheduleOffset`` ("The number of days to wait after the date and time specified by a cron
  expression before running the maintenance window", SSM API reference, UpdateMaintenanceWindow),
  to UTC minutes.
* :func:`start_collisions` / :func:`collisions_by_window` find the minutes in which more windows
  start than the quota runs at once.
* :func:`stagger` deterministically shifts a default cron start per group.

Cron semantics follow the SSM User Guide ("Reference: Cron and rate expressions for Systems
Manager") and EventBridge's cron reference it shares: six fields ``minutes hours day-of-month
month day-of-week year`` (an optional leading seconds field is accepted and ignored: a start is
reported by its minute), day-of-week 1=SUN..7=SAT, exactly one of the day fields ``?``; ``L``,
``LW``, ``L-n``, ``nW`` in day-of-month; ``L`` (Saturday, the week's last day), ``nL`` (last
weekday *n* of the month), ``n#k`` (the *k*-th weekday *n*) in day-of-week; ``nW`` is the weekday
nearest day *n* without leaving the month (no start in a month without day *n*). Local times are
evaluated DST-aware with :mod:`zoneinfo`; a local time that does not exist (the hour skipped in
spring) is taken with the offset before the change, i.e. it starts one hour later by the wall clock,
and a repeated local time (autumn) starts at its first occurrence. SSM does not document either
case; these are the usual cron choices.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tagpatch.reconciler.schedule import ScheduleError, validate_schedule

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # date.weekday() order
_UTC_NAMES = frozenset({"", "UTC", "Etc/UTC"})  # answered without a tz database
_AT = re.compile(r"^at\((.+)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")

#: How far ahead collisions are looked for by default: every weekly and monthly schedule starts
#: at least once in 35 days.
DEFAULT_HORIZON = timedelta(days=35)
#: SSM's default for maintenance window executions running at once per account and Region.
DEFAULT_CONCURRENT_LIMIT = 5


# --------------------------------------------------------------------------------------------
# cron evaluation
# --------------------------------------------------------------------------------------------
def _number(token: str, low: int, names: tuple[str, ...]) -> int:
    if token in names:
        return names.index(token) + low
    return int(token)


def _values(text: str, low: int, high: int, names: tuple[str, ...] = ()) -> set[int]:
    """Every value of a plain field (``*``, ``a``, ``a-b`` (wrapping past ``high``), ``/step``, lists)."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = _number(first_text, low, names), _number(last_text, low, names)
        else:
            first = _number(base, low, names)
            last = high if step_text else first
        span = (last - first) % (high - low + 1)  # a range such as FRI-MON wraps round
        values.update(low + (first - low + offset) % (high - low + 1) for offset in range(0, span + 1, step))
    return values


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _cron_weekday(day: date) -> int:
    """1=SUN..7=SAT, the numbering of SSM's (and EventBridge's) day-of-week field."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(day: date) -> date:
    """The weekday nearest ``day`` within its month (the ``W`` rule)."""
    last = _days_in_month(day.year, day.month)
    if day.weekday() == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - timedelta(days=1) if day.day > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + timedelta(days=1) if day.day < last else day - timedelta(days=2)
    return day


@dataclass(frozen=True)
class _DayOfMonth:
    days: frozenset[int]
    last_minus: frozenset[int]  # L (0) and L-n
    nearest: frozenset[int]  # nW
    last_weekday: bool  # LW

    def matches(self, day: date) -> bool:
        last = _days_in_month(day.year, day.month)
        if day.day in self.days or (last - day.day) in self.last_minus:
            return True
        if self.last_weekday and day == _nearest_weekday(date(day.year, day.month, last)):
            return True
        return any(n <= last and day == _nearest_weekday(date(day.year, day.month, n)) for n in self.nearest)


@dataclass(frozen=True)
class _DayOfWeek:
    weekdays: frozenset[int]
    last_of_month: frozenset[int]  # nL
    nth: frozenset[tuple[int, int]]  # n#k

    def matches(self, day: date) -> bool:
        weekday = _cron_weekday(day)
        if weekday in self.weekdays:
            return True
        if weekday in self.last_of_month and day.day + 7 > _days_in_month(day.year, day.month):
            return True
        return (weekday, (day.day - 1) // 7 + 1) in self.nth


def _day_of_month(text: str) -> _DayOfMonth:
    days: set[int] = set()
    last_minus: set[int] = set()
    nearest: set[int] = set()
    last_weekday = False
    for part in text.split(","):
        if part == "L":
            last_minus.add(0)
        elif part.startswith("L-"):
            last_minus.add(int(part[2:]))
        elif part == "LW":
            last_weekday = True
        elif part.endswith("W"):
            nearest.add(int(part[:-1]))
        else:
            days |= _values(part, 1, 31)
    return _DayOfMonth(frozenset(days), frozenset(last_minus), frozenset(nearest), last_weekday)


def _day_of_week(text: str) -> _DayOfWeek:
    weekdays: set[int] = set()
    last_of_month: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for part in text.split(","):
        if part == "L":
            weekdays.add(7)  # the last day of the week: Saturday
        elif part.endswith("L"):
            last_of_month.add(_number(part[:-1], 1, _DAYS))
        elif "#" in part:
            weekday, _, k = part.partition("#")
            nth.add((_number(weekday, 1, _DAYS), int(k)))
        else:
            weekdays |= _values(part, 1, 7, _DAYS)
    return _DayOfWeek(frozenset(weekdays), frozenset(last_of_month), frozenset(nth))


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day: _DayOfMonth | _DayOfWeek

    def matches(self, day: date) -> bool:
        return day.year in self.years and day.month in self.months and self.day.matches(day)


def _parse_cron(body: str) -> _Cron:
    fields = body.upper().split()
    if len(fields) == 7:
        fields.pop(0)  # seconds: a start is reported by its minute
    minutes, hours, day_of_month, month, day_of_week, year = fields
    day: _DayOfMonth | _DayOfWeek = (
        _day_of_week(day_of_week) if day_of_month == "?" else _day_of_month(day_of_month)
    )
    return _Cron(
        minutes=tuple(sorted(_values(minutes, 0, 59))),
        hours=tuple(sorted(_values(hours, 0, 23))),
        months=frozenset(_values(month, 1, 12, _MONTHS)),
        years=frozenset(_values(year, 1970, 2199)),
        day=day,
    )


def _zone(name: str) -> tzinfo:
    if name in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"time zone {name!r} is unknown here (no tz database entry)") from error


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def next_starts(
    schedule: str, timezone: str, offset_days: int, after: datetime, horizon: timedelta
) -> list[datetime]:
    """The UTC minutes in ``[after, after + horizon)`` at which a window with this schedule starts.

    ``timezone`` is the window's ``ScheduleTimezone`` (empty: UTC, SSM's default) and
    ``offset_days`` its ``ScheduleOffset`` (cron only; ignored for ``at``). ``rate(...)`` gives
    ``[]``: its starts depend on when the window was created, which the schedule does not say.
    Raises :class:`ScheduleError` for a schedule SSM would refuse and :class:`ValueError` for an
    unknown time zone, a naive ``after`` or a negative offset.
    """
    validate_schedule(schedule)
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    if offset_days < 0:
        raise ValueError(f"offset_days must be 0 or more, got {offset_days}")
    zone = _zone(timezone)
    end = after + horizon
    if at := _AT.match(schedule):
        start = _minute(datetime.fromisoformat(at.group(1)).replace(tzinfo=zone))
        return [start] if after <= start < end else []
    cron = _CRON.match(schedule)
    if cron is None:  # rate(...)
        return []
    rule = _parse_cron(cron.group(1))
    offset = timedelta(days=offset_days)
    # A start on local date d comes from the cron date d - offset; one day of margin either side
    # covers every UTC offset and DST shift.
    first = after.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    starts: set[datetime] = set()
    day = first
    while day <= last:
        if rule.matches(day - offset):
            for hour in rule.hours:
                for minute in rule.minutes:
                    start = _minute(datetime.combine(day, time(hour, minute), tzinfo=zone))
                    if after <= start < end:
                        starts.add(start)
        day += timedelta(days=1)
    return sorted(starts)


# --------------------------------------------------------------------------------------------
# collisions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowStart:
    """What decides when one maintenance window starts (its SSM schedule settings)."""

    window_id: str
    schedule: str
    timezone: str = "UTC"
    offset: int = 0
    enabled: bool = True  # a disabled (paused) window does not start


@dataclass(frozen=True)
class Collision:
    """A UTC minute in which more windows start than SSM runs at once."""

    minute: datetime
    window_ids: tuple[str, ...]
    description: str


def describe(count: int, minute: datetime, limit: int) -> str:
    """``6 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 5 at once``."""
    minute = minute.astimezone(UTC)
    return (
        f"{count} windows start at {_WEEKDAY_NAMES[minute.weekday()]} {minute:%Y-%m-%d %H:%M} UTC; "
        f"SSM runs {limit} at once"
    )


def start_collisions(
    windows: Iterable[WindowStart], limit: int, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> list[Collision]:
    """Every minute in ``[now, now + horizon)`` in which more than ``limit`` windows start, in order.

    A window counts once however often it is given (by ``window_id``, the first one wins). A
    disabled window, and a window whose starts are unknown (``rate(...)``) or cannot be evaluated
    (a schedule SSM would refuse, a time zone without tz data here), counts in no minute.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    starting: dict[datetime, set[str]] = defaultdict(set)
    seen: set[str] = set()
    for window in windows:
        if window.window_id in seen:
            continue
        seen.add(window.window_id)
        if not window.enabled:
            continue
        try:
            minutes = next_starts(window.schedule, window.timezone, window.offset, now, horizon)
        except ValueError:  # ScheduleError included
            continue
        for minute in minutes:
            starting[minute].add(window.window_id)
    return [
        Collision(minute, tuple(sorted(ids)), describe(len(ids), minute, limit))
        for minute, ids in sorted(starting.items())
        if len(ids) > limit
    ]


def collisions_by_window(
    windows: Iterable[WindowStart], limit: int, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> dict[str, str]:
    """Each colliding window's first collision, described (windows that never collide are absent)."""
    first: dict[str, str] = {}
    for collision in start_collisions(windows, limit, now, horizon):
        for window_id in collision.window_ids:
            first.setdefault(window_id, collision.description)
    return first


# --------------------------------------------------------------------------------------------
# stagger
# --------------------------------------------------------------------------------------------
_LAST_MINUTE = 23 * 60 + 59


def stagger_slot(key: str, slots: int) -> int:
    """The slot (0..slots-1) of ``key``: sha256, the same in every process and Python version."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % slots


def stagger(schedule: str, key: str, slots: int, spacing_minutes: int = 30) -> str:
    """``schedule`` started ``(slot of key) * spacing_minutes`` later, the same for the same key.

    For the stack's default schedule only: a group that sets its own schedule keeps it exactly,
    and groups in the same slot still share windows (20 groups a window). Returned unchanged:

    * ``rate(...)`` and ``at(...)``, and ``slots`` <= 1;
    * a cron whose minutes or hours field is not a single number (``0/30``, ``1,13``, ``*``):
      shifting a list or a range would change how often it runs, not only when;
    * slot 0.

    The shift never leaves the day, so day-of-month, day-of-week and ``ScheduleOffset`` keep their
    meaning: when fewer than ``slots`` slots fit between the start and 23:59, only those that fit
    are used (``key`` picks among them), e.g. a 22:00 start with 30-minute spacing has 4 slots.
    """
    if spacing_minutes < 1:
        raise ValueError(f"spacing_minutes must be at least 1, got {spacing_minutes}")
    validate_schedule(schedule)
    cron = _CRON.match(schedule)
    if cron is None or slots <= 1:
        return schedule
    fields = cron.group(1).split()
    index = 1 if len(fields) == 7 else 0  # skip the seconds field
    minute_text, hour_text = fields[index], fields[index + 1]
    if not (minute_text.isdigit() and hour_text.isdigit()):
        return schedule
    start = int(hour_text) * 60 + int(minute_text)
    fitting = min(slots, (_LAST_MINUTE - start) // spacing_minutes + 1)
    shifted = start + stagger_slot(key, fitting) * spacing_minutes
    if shifted == start:
        return schedule
    fields[index], fields[index + 1] = str(shifted % 60), str(shifted // 60)
    return validate_schedule(f"cron({' '.join(fields)})")


__all__ = [
    "DEFAULT_CONCURRENT_LIMIT",
    "DEFAULT_HORIZON",
    "Collision",
    "ScheduleError",
    "WindowStart",
    "collisions_by_window",
    "describe",
    "next_starts",
    "stagger",
    "stagger_slot",
    "start_collisions",
]
