"""Validation of Systems Manager maintenance-window schedule expressions.

SSM accepts ``cron(...)`` (six fields, or seven with a leading seconds field), ``rate(N unit)``
and one-time ``at(YYYY-MM-DDTHH:MM:SS)`` expressions. The botocore model only bounds the length,
so the rules below follow the SSM User Guide ("Reference: Cron and rate expressions for Systems
Manager"): a bad expression is refused here with a reason instead of failing inside SSM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: str = ""
    extra: str = ""  # regex of additional single-token forms (L, W, #)


_SECONDS = _Field("seconds", 0, 59)
_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31, extra=r"L|LW|L-\d{1,2}|\d{1,2}W|\?"),
    _Field("month", 1, 12, names=_MONTHS),
    _Field(
        "day-of-week",
        1,
        7,
        names=_DAYS,
        extra=rf"L|[1-7]L|[1-7]#[1-5]|(?:{_DAYS})#[1-5]|(?:{_DAYS})L|\?",
    ),
    _Field("year", 1970, 2199),
)

_RATE = re.compile(r"^rate\((\d{1,4}) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


class ScheduleError(ValueError):
    """The expression is not a schedule SSM accepts; the message says why."""


def _value(token: str, field: _Field) -> int:
    if field.names and token.upper() in field.names.split("|"):
        return field.names.split("|").index(token.upper()) + 1
    if not token.isdigit():
        raise ScheduleError(f"{field.name}: '{token}' is not a number")
    number = int(token)
    if not field.low <= number <= field.high:
        raise ScheduleError(f"{field.name}: {number} is outside {field.low}-{field.high}")
    return number


def _check_field(text: str, field: _Field) -> None:
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{field.name}: empty list item in '{text}'")
        if field.extra and re.fullmatch(field.extra, part, flags=re.IGNORECASE):
            if "#" in part or part[:-1].isdigit():
                _value(re.split(r"[#LW]", part.upper())[0] or "1", field)
            continue
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ScheduleError(f"{field.name}: bad increment in '{part}'")
        if base == "*":
            continue
        low, _, high = base.partition("-")
        _value(low, field)
        if high:
            _value(high, field)


def _check_cron(body: str) -> None:
    fields = body.split()
    if len(fields) not in (6, 7):
        raise ScheduleError(f"cron needs 6 fields (or 7 with seconds), got {len(fields)}")
    if len(fields) == 7:
        _check_field(fields.pop(0), _SECONDS)
    for text, field in zip(fields, _FIELDS, strict=True):
        _check_field(text, field)
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    minutes, hours = fields[0], fields[1]
    if hours == "*" and (minutes == "*" or re.fullmatch(r"(\*|\d+)/[1-4]", minutes)):
        raise ScheduleError("cron expressions that run more often than every 5 minutes are not supported")


def validate_schedule(expression: str) -> str:
    """Return ``expression`` unchanged if SSM accepts it as a window schedule, else raise."""
    if not expression or len(expression) > 256:
        raise ScheduleError("schedule must be 1-256 characters")
    if cron := _CRON.match(expression):
        _check_cron(cron.group(1))
        return expression
    if rate := _RATE.match(expression):
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ScheduleError("rate value must be at least 1")
        if (value == 1) == unit.endswith("s"):
            raise ScheduleError(f"rate unit must be {'singular' if value == 1 else 'plural'} for {value}")
        return expression
    if at := _AT.match(expression):
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError as error:
            raise ScheduleError(f"at(): {error}") from error
        return expression
    raise ScheduleError(f"'{expression}' is not cron(...), rate(...) or at(...)")


def is_cron(expression: str) -> bool:
    return expression.startswith("cron(")
