"""The CLI's pure formatting: tables, CSV/JSON and the HTML chart's edge cases."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tagpatch.cli import views
from tagpatch.cli.app import _last_run, parse_since

NOW = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)


def _trend(group: str, *points: tuple[str, str | None]) -> views.GroupTrend:
    return views.GroupTrend(
        group,
        [views.Point(sid, 2, 1, None if p is None else Decimal(p)) for sid, p in points],
    )


def test_table_aligns_columns_and_shows_missing_values_as_dashes() -> None:
    text = views.table(("A", "LONGER"), [["x", None], ["yy", Decimal("12.345")]])
    assert text.splitlines() == ["A   LONGER", "--  ------", "x   -", "yy  12.3"]


def test_report_of_a_group_without_snapshots_and_of_one_without_a_percentage() -> None:
    # Given one group never snapshotted and one whose only snapshot had no instances
    trends = [_trend("new"), _trend("empty", ("2025-06-01T06:00:00Z", None))]

    # When it is rendered as a table, CSV and JSON
    table = views.report_table(trends)
    rows = views.report_csv(trends).splitlines()
    document = json.loads(views.report_json(trends))

    # Then nothing is invented: dashes, empty cells and nulls
    assert table.splitlines()[2].split() == ["new", "-", "-", "-", "-", "-", "0"]
    assert rows == [",".join(views.TREND_HEADER), "empty,2025-06-01T06:00:00Z,2,1,"]
    assert document["groups"][0] == {"group": "new", "latest": None, "change": None, "trend": []}
    assert document["groups"][1]["latest"]["compliancePercent"] is None


def test_chart_of_one_snapshot_centres_the_point_and_skips_groups_without_percentages() -> None:
    # Given a single snapshot time, and a group whose snapshot id is not a time
    trends = [
        _trend("web", ("2025-06-01T06:00:00Z", "75")),
        _trend("odd", ("not-a-time", "50")),
        _trend("none", ("2025-06-01T06:00:00Z", None)),
    ]

    # When the chart is drawn
    svg = views.compliance_chart(trends)

    # Then only web has a series, one point in the middle at 75 %
    assert svg.count('class="series"') == 1
    middle = views.CHART_MARGIN + (views.CHART_WIDTH - 2 * views.CHART_MARGIN) / 2
    level = views.CHART_MARGIN + 0.25 * (views.CHART_HEIGHT - 2 * views.CHART_MARGIN)
    assert f'data-group="web" d="M{middle:.1f},{level:.1f}"' in svg


def test_html_escapes_group_names() -> None:
    page = views.report_html(
        [_trend("<b>&", ("2025-06-01T06:00:00Z", "10"), ("2025-06-02T06:00:00Z", "20"))],
        stack="s",
        generated_at="now",
    )
    assert 'data-group="&lt;b&gt;&amp;"' in page
    assert "<b>&" not in page


def test_to_json_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        views.to_json({"x": object()})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7d", datetime(2025, 6, 1, 12, 0, tzinfo=UTC)),
        ("12h", datetime(2025, 6, 8, 0, 0, tzinfo=UTC)),
        ("30m", datetime(2025, 6, 8, 11, 30, tzinfo=UTC)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
        ("2025-06-01T06:00:00Z", datetime(2025, 6, 1, 6, tzinfo=UTC)),
    ],
)
def test_since_accepts_durations_and_iso_times(value: str, expected: datetime) -> None:
    assert parse_since(value, NOW) == expected


def test_since_refuses_anything_else() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid --since"):
        parse_since("last week", NOW)


def test_last_run_summarises_the_newest_command() -> None:
    items = [
        {"command_id": "old", "event_time": "2025-06-01T06:00:00.000Z", "status": "Failed"},
        {"command_id": "new", "event_time": "2025-06-08T06:00:00.000Z", "status": "Success"},
        {"command_id": "new", "event_time": "2025-06-08T06:01:00.000Z", "status": "InProgress"},
    ]
    assert _last_run(items) == "2025-06-08T06:01 InProgress (1/2 ok)"
    assert _last_run([]) == "-"
