"""The organization commands' pure parts: filters, latest rows, daily series, ages, options, chart."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tagpatch.adapters.hub_reads import HubState
from tagpatch.cli import org, views
from tagpatch.hub.records import ComplianceFacet, GroupState, HistoryRow, MemberState, RunFacet

NOW = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)


def _group(
    account: str, region: str, name: str, instances: int, compliant: int, **extra: object
) -> GroupState:
    facet = ComplianceFacet("2026-12-02T05:00:00Z", "s", instances, compliant, instances - compliant, None)
    return GroupState(account, region, name, compliance=facet, **extra)  # type: ignore[arg-type]


def _snapshot(at: str, account: str, group: str, instances: int, compliant: int) -> HistoryRow:
    return HistoryRow("snapshot", at, account, "eu-west-1", group, at, instances, compliant)


STATE = HubState(
    members=[
        MemberState("111111111111", "eu-west-1", ou_id="ou-1", ou_name="Prod"),
        MemberState("222222222222", "eu-west-1", ou_id="ou-2", ou_name="Dev"),
    ],
    groups=[
        _group("111111111111", "eu-west-1", "web", 4, 4),
        _group(
            "111111111111",
            "eu-west-1",
            "db",
            2,
            1,
            non_compliant_since="2026-11-30T05:00:00Z",
            run=RunFacet("2026-12-01T03:00:00Z", "c1", "Failed", 1),
        ),
        _group("222222222222", "eu-west-1", "web", 3, 0, non_compliant_since="2026-11-01T05:00:00Z"),
        _group("333333333333", "us-east-1", "web", 1, 1),  # a member known only by its group
    ],
)


def test_percent_is_rounded_once_to_the_places_asked() -> None:
    assert org.percent(7, 13) == Decimal("53.85")
    assert org.percent(7, 13, 1) == Decimal("53.8")  # not 53.85 rounded again
    assert org.percent(0, 0) is None


def test_latest_rows_by_account_and_by_group() -> None:
    members = org.members_by_key(STATE)
    by_account = org.latest_rows(STATE, org.Filters(), org.BY_ACCOUNT, members)
    assert {k: (r.instances, r.compliant, r.groups, r.ou) for k, r in by_account.items()} == {
        "111111111111": (6, 5, 2, "Prod"),
        "222222222222": (3, 0, 1, "Dev"),
        "333333333333": (1, 1, 1, ""),
    }
    assert by_account["111111111111"].non_compliant_since == "2026-11-30T05:00:00Z"
    assert by_account["111111111111"].last_run is not None
    assert by_account["111111111111"].last_run[3] == "db"
    by_group = org.latest_rows(STATE, org.Filters(), org.BY_GROUP, members)
    assert {k: (r.instances, r.compliant, len(r.members)) for k, r in by_group.items()} == {
        "web": (8, 5, 3),
        "db": (2, 1, 1),
    }
    assert by_group["web"].non_compliant_since == "2026-11-01T05:00:00Z"  # the earliest


@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        (org.Filters(ou="Prod"), {"111111111111"}),
        (org.Filters(ou="ou-2"), {"222222222222"}),
        (org.Filters(region="us-east-1"), {"333333333333"}),
        (org.Filters(group="db"), {"111111111111"}),
        (org.Filters(account="222222222222", group="web"), {"222222222222"}),
    ],
)
def test_filters(filters: org.Filters, keys: set[str]) -> None:
    rows = org.latest_rows(STATE, filters, org.BY_ACCOUNT, org.members_by_key(STATE))
    assert set(rows) == keys


def test_an_unknown_filter_value_is_not_found_and_names_it() -> None:
    with pytest.raises(org.NotFound, match="unknown OU 'Finance'"):
        org.Filters(ou="Finance").check_known(STATE)
    with pytest.raises(org.NotFound, match="unknown region 'ap-south-1'"):
        org.Filters(region="ap-south-1").check_known(STATE)
    org.Filters(account="333333333333", group="db").check_known(STATE)  # each known: no error
    assert str(org.Filters(ou="Prod", group="db")) == "OU 'Prod', group 'db'"
    assert str(org.Filters()) == "no filter"


def test_daily_series_takes_each_groups_last_snapshot_of_the_day() -> None:
    # Given on 12-01 two snapshots of 111's web (the later one worse) and one of db; on 12-02 web only
    day1 = [
        _snapshot("2026-12-01T09:00:00Z", "111111111111", "web", 4, 2),
        _snapshot("2026-12-01T05:00:00Z", "111111111111", "web", 4, 4),
        _snapshot("2026-12-01T05:00:00Z", "111111111111", "db", 2, 2),
        _snapshot("2026-12-01T05:00:00Z", "222222222222", "web", 3, 3),
    ]
    day2 = [_snapshot("2026-12-02T05:00:00Z", "111111111111", "web", 4, 1)]
    members = org.members_by_key(STATE)
    history = [(date(2026, 12, 1), day1), (date(2026, 12, 2), day2)]

    # When the series per account and per group are made, and for OU Prod only
    series = org.daily_series(history, org.Filters(), org.BY_ACCOUNT, members)
    groups = org.daily_series(history, org.Filters(), org.BY_GROUP, members)
    prod = org.daily_series(history, org.Filters(ou="Prod"), org.BY_GROUP, members)

    # Then each day sums the groups' last snapshot of that day
    assert [(p.snapshot_id, p.instances, p.compliant_instances) for p in series["111111111111"]] == [
        ("2026-12-01", 6, 4),
        ("2026-12-02", 4, 1),
    ]
    assert [p.compliance_percent for p in groups["web"]] == [Decimal("71.43"), Decimal("25.00")]
    assert [p.compliant_instances for p in prod["web"]] == [2, 1]


def test_rows_sort_worst_first_and_unknown_last() -> None:
    rows = [
        org.OrgRow("b", instances=0),
        org.OrgRow("a", instances=2, compliant=2),
        org.OrgRow("c", instances=2),
    ]
    assert [r.key for r in sorted(rows, key=org._worst_first)] == ["c", "a", "b"]


def test_last_run_text_names_where_it_ran() -> None:
    row = org.OrgRow(
        "111111111111", last_run=(RunFacet("2026-12-01T03:00:00Z", "c", "Failed", 2), "1", "r", "g")
    )
    assert org.last_run_text(row, org.BY_ACCOUNT) == "2026-12-01T03:00 Failed, 2 failed (g in r)"
    assert org.last_run_text(row, org.BY_GROUP) == "2026-12-01T03:00 Failed, 2 failed (1 r)"
    assert org.last_run_text(org.OrgRow("x"), org.BY_GROUP) is None


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=30), "0m"),
        (timedelta(minutes=59), "59m"),
        (timedelta(hours=47), "47h"),
        (timedelta(days=3, hours=5), "3d"),
        (None, None),
    ],
)
def test_ago_text(delta: timedelta | None, text: str | None) -> None:
    assert org.ago_text(delta) == text


def test_account_rows_flag_members_silent_after_the_limit_or_never_heard() -> None:
    state = HubState(
        members=[
            MemberState("111111111111", "eu-west-1", last_event_at="2026-12-02T05:00:00Z", groups=7),
            MemberState("222222222222", "eu-west-1", last_event_at="2026-12-01T05:00:00Z"),
        ],
        groups=[
            _group("222222222222", "eu-west-1", "web", 2, 1),
            _group("333333333333", "eu-west-1", "db", 1, 1),
        ],
    )
    rows = org.account_rows(state, org.Filters(), NOW, timedelta(hours=24))
    assert [(r.member.account, r.silent, r.groups) for r in rows] == [
        ("111111111111", False, 7),  # the heartbeat's count of managed groups
        ("222222222222", True, 1),  # 24 h 30 m
        ("333333333333", True, 1),  # never heard from: only a group's item names it
    ]
    assert rows[1].percent == Decimal("50.00")
    only = org.account_rows(state, org.Filters(group="db"), NOW, timedelta(hours=24))
    assert [r.member.account for r in only] == ["333333333333"]


def test_org_options_without_org_are_named() -> None:
    args = argparse.Namespace(
        command="report", org=False, by="group", ou=None, account="1", member_region=None
    )
    args.since = None
    assert (
        org.check_org_options(args) == "--by, --account only with --org (the organization, from a hub stack)"
    )
    args.org = True
    assert org.check_org_options(args) is None
    assert org.check_org_options(argparse.Namespace(command="accounts", ou="x")) is None


def test_silent_after_refuses_zero_and_words() -> None:
    assert org.silent_after("36h") == timedelta(hours=36)
    for bad in ("0h", "a day", "24"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid --silent-after"):
            org.silent_after(bad)


def test_the_chart_wraps_its_legend_and_names_series_by_the_attribute_asked() -> None:
    # Given 12 accounts' series (5 legend entries fit one row of the chart's width)
    trends = [
        views.GroupTrend(f"{n:012d}", [views.Point("2026-12-01", 2, 1, Decimal(50))]) for n in range(12)
    ]

    # When drawn per account
    svg = views.compliance_chart(trends, series="account")

    # Then each series is a data-account path, and the legend takes 3 rows (2 more than the chart's one)
    assert len(re.findall(r'<path class="series" data-account="\d{12}"', svg)) == 12
    height = views.CHART_HEIGHT + 2 * views.LEGEND_ROW
    assert f'height="{height}" viewBox="0 0 {views.CHART_WIDTH} {height}"' in svg
    legend_rows = {float(y) for y in re.findall(r'<text class="legend" x="[^"]+" y="([^"]+)"', svg)}
    assert len(legend_rows) == 3
    assert 'aria-label="Compliance % over time per account"' in svg


def test_html_page_escapes_its_title_and_cells() -> None:
    page = views.html_page(
        "Org <x>",
        generated_at="now",
        trends=[],
        series="group",
        table_title="T&T",
        header=("A",),
        rows=[["<b>"]],
        notes=["1 < 2"],
    )
    assert "<title>Org &lt;x&gt;</title>" in page
    assert "<td>&lt;b&gt;</td>" in page and "<p>1 &lt; 2</p>" in page and "T&amp;T" in page


def test_an_ou_filter_on_a_hub_without_ous_says_why() -> None:
    state = HubState(members=[MemberState("111111111111", "eu-west-1")])
    with pytest.raises(org.NotFound, match="no member has an OU recorded"):
        org.Filters(ou="Prod").check_known(state)
