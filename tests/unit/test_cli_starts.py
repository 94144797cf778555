"""The STARTS column of ``tagpatch groups``: start collisions read from the groups table's records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tagpatch.cli.app import GROUPS_HEADER, build_parser, start_notes, window_starts
from tagpatch.models.records import GroupRecord
from tagpatch.reconciler.starts import WindowStart

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DEFAULT = "cron(0 3 ? * SUN *)"
COLLISION = "6 windows start at Sun 2026-12-06 03:00 UTC; SSM runs 5 at once"


def facts(
    window_id: str, schedule: str = DEFAULT, timezone: str = "UTC", offset: str = "0"
) -> dict[str, str]:
    return {
        "window_id": window_id,
        "target_id": f"target-{window_id}",
        "task_id": f"task-{window_id}",
        "schedule": schedule,
        "timezone": timezone,
        "offset": offset,
    }


def record(group: str, **windows: dict[str, str]) -> GroupRecord:
    return GroupRecord(group=group, status="converged", windows=dict(windows))


def test_the_column_is_the_last_one() -> None:
    assert GROUPS_HEADER[-1] == "STARTS"


def test_each_distinct_window_is_read_once_with_its_schedule_facts() -> None:
    # Given two groups sharing a window, one with a scan window in Berlin and a 2-day offset
    records = [
        record("web", install=facts("mw-a")),
        record(
            "api", install=facts("mw-a"), scan=facts("mw-s", "cron(0 2 ? * TUE#2 *)", "Europe/Berlin", "2")
        ),
    ]

    # Then each window is there once, with its zone and offset
    assert window_starts(records) == [
        WindowStart("mw-a", DEFAULT, "UTC", 0),
        WindowStart("mw-s", "cron(0 2 ? * TUE#2 *)", "Europe/Berlin", 2),
    ]


def test_records_of_an_older_tagpatch_or_with_unreadable_facts_give_no_window() -> None:
    records = [
        record("old", install={"window_id": "mw-old", "target_id": "t", "task_id": "k"}),
        record("odd", install=facts("mw-odd", offset="two")),
        record("neg", install=facts("mw-neg", offset="-1")),
        record("inf", install=facts("mw-inf", offset="Infinity")),
        record("frac", install=facts("mw-frac", offset="1.5")),
        record("none", install=facts("", DEFAULT)),
    ]
    assert window_starts(records) == []


def test_a_decimal_offset_and_a_missing_zone_are_read_as_ssm_would() -> None:
    plain = {"window_id": "mw-a", "schedule": DEFAULT, "offset": "2.0"}
    assert window_starts([record("web", install=plain)]) == [WindowStart("mw-a", DEFAULT, "UTC", 2)]


def test_a_disabled_window_is_read_as_disabled() -> None:
    paused = {**facts("mw-p"), "enabled": "False"}
    assert window_starts([record("web", install=paused)])[0].enabled is False


def test_every_group_of_a_colliding_window_gets_the_note() -> None:
    # Given 6 windows on the default schedule (one shared by two groups) and one on Mondays
    records = [record(f"g{n}", install=facts(f"mw-{n}")) for n in range(6)]
    records.append(record("shared", install=facts("mw-0")))
    records.append(record("monday", install=facts("mw-m", "cron(0 3 ? * MON *)")))

    notes = start_notes(records, 5, NOW)

    # Then each group on the colliding windows has the first collision; the Monday group none
    assert notes == {**{f"g{n}": COLLISION for n in range(6)}, "shared": COLLISION}


def test_exactly_the_limit_gives_no_note_and_a_lower_limit_does() -> None:
    records = [record(f"g{n}", install=facts(f"mw-{n}")) for n in range(5)]
    assert start_notes(records, 5, NOW) == {}
    assert start_notes(records, 4, NOW)["g0"] == COLLISION.replace("6 windows", "5 windows").replace(
        "runs 5", "runs 4"
    )


def test_a_collision_of_a_scan_window_names_its_role() -> None:
    # Given 6 scan windows colliding on Tuesdays while the install windows do not
    records = [
        record(
            f"g{n}",
            install=facts(f"mw-i{n}", f"cron({n} 3 ? * SUN *)"),
            scan=facts(f"mw-s{n}", "cron(0 1 ? * TUE *)"),
        )
        for n in range(6)
    ]
    notes = start_notes(records, 5, NOW)
    assert notes["g0"] == "scan window: 6 windows start at Tue 2026-12-01 01:00 UTC; SSM runs 5 at once"


def test_older_records_count_nothing_and_get_a_blank_column() -> None:
    records = [
        record(f"g{n}", install={"window_id": f"mw-{n}", "target_id": "t", "task_id": "k"}) for n in range(9)
    ]
    assert start_notes(records, 5, NOW) == {}


def test_the_limit_option_defaults_to_five_and_takes_a_positive_number() -> None:
    parser = build_parser()
    assert parser.parse_args(["groups"]).concurrent_limit == 5
    assert parser.parse_args(["groups", "--concurrent-limit", "10"]).concurrent_limit == 10


@pytest.mark.parametrize("value", ["0", "-1", "five", "2.5"])
def test_a_bad_limit_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["groups", "--concurrent-limit", value])
    assert exit_info.value.code == 2
    assert "must be a whole number of at least 1" in capsys.readouterr().err
