import pytest

from tagpatch.reconciler.schedule import ScheduleError, validate_schedule

VALID = [
    # every example of the SSM User Guide's cron and rate reference
    "cron(30 09 ? * * *)",
    "cron(24 30 09 ? * * *)",
    "cron(0 2 ? * THU#3 *)",
    "cron(15 10 ? * MON-FRI *)",
    "cron(0 2 L * ? *)",
    "cron(15 10 ? * 6L *)",
    "cron(30 23 ? * TUE#3 *)",
    "cron(0 3 ? * SUN *)",
    "cron(0/15 * ? * * *)",
    "cron(0 4 1,15 * ? 2027)",
    "rate(30 minutes)",
    "rate(1 hour)",
    "rate(5 hours)",
    "rate(25 days)",
    "at(2020-07-07T15:55:00)",
]


@pytest.mark.parametrize("expression", VALID)
def test_accepts_documented_expressions(expression: str) -> None:
    assert validate_schedule(expression) == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? *)", "cron needs 6 fields"),
        ("cron(61 3 ? * SUN *)", "minutes: 61 is outside 0-59"),
        ("cron(0 24 ? * SUN *)", "hours: 24 is outside 0-23"),
        ("cron(0 3 ? 13 SUN *)", "month: 13 is outside 1-12"),
        ("cron(0 3 ? * FOO *)", "day-of-week"),
        ("cron(0 3 ? * SUN 1900)", "year: 1900 is outside"),
        ("cron(* * ? * * *)", "more often than every 5 minutes"),
        ("cron(0/2 * ? * * *)", "more often than every 5 minutes"),
        ("cron(0/0 3 ? * * *)", "bad increment"),
        ("cron(0,,5 3 ? * * *)", "empty list item"),
        ("rate(1 hours)", "singular"),
        ("rate(5 hour)", "plural"),
        ("rate(0 days)", "at least 1"),
        ("at(2020-13-07T15:55:00)", "month must be in 1..12"),
        ("every sunday", "is not cron(...), rate(...) or at(...)"),
        ("", "1-256 characters"),
        ("cron(" + "0 " * 200 + ")", "1-256 characters"),
    ],
)
def test_refuses_with_reason(expression: str, reason: str) -> None:
    with pytest.raises(
        ScheduleError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        validate_schedule(expression)
