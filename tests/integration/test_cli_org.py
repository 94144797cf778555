"""``tagpatch report --org``, ``runs --org`` and ``accounts`` against a hub stack on moto (in-process).

The hub stack is made by CloudFormation (its two tables laid out as :mod:`tagpatch.hub.records`
says, and the hub's Outputs); its items are written straight into the tables, as the hub's store
function would have written them. Every AWS call the CLI makes is counted (botocore ``before-call``).

The organization (now = 2026-12-02T05:30Z):

* 111111111111 (OU Prod) in eu-west-1 and us-east-1, 222222222222 (OU Dev) in eu-west-1 and
  us-east-1, 333333333333 (OU Prod) in eu-west-1, silent for 3 days;
* groups web and db in each member; snapshots on 11-30, 12-01 and 12-02 (two on 12-01 for
  111's eu-west-1 web: the later one counts); runs on 12-01 and 12-02, two failed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from benchmarks.org_report import (
    CallCounter,
    batch_write,
    counted_sessions,
    create_hub_stack,
    group_item,
    member_item,
    run_facet,
    run_item,
    snapshot_item,
)
from tagpatch.cli import org
from tagpatch.cli.app import main

NOW = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)
HUB = "tagpatch-hub"
A1, A2, A3 = "111111111111", "222222222222", "333333333333"
EU, US = "eu-west-1", "us-east-1"
MEMBERS = [(A1, EU), (A1, US), (A2, EU), (A2, US), (A3, EU)]
OUS = {A1: ("ou-ab12-prod0001", "Prod"), A2: ("ou-ab12-dev00001", "Dev"), A3: ("ou-ab12-prod0001", "Prod")}
#: instances, compliant now (12-02) per (account, region, group)
LATEST = {
    (A1, EU, "web"): (10, 10),
    (A1, EU, "db"): (4, 2),
    (A1, US, "web"): (6, 6),
    (A1, US, "db"): (2, 2),
    (A2, EU, "web"): (8, 4),
    (A2, EU, "db"): (2, 2),
    (A2, US, "web"): (4, 4),
    (A2, US, "db"): (4, 0),
    (A3, EU, "web"): (3, 3),
    (A3, EU, "db"): (1, 1),
}


def _rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()[2:]]


class Hub:
    def __init__(self) -> None:
        session = boto3.Session(region_name="us-east-1")
        self.cloudformation = session.client("cloudformation")
        self.dynamodb = session.client("dynamodb")
        self.state, self.history = create_hub_stack(self.cloudformation, HUB)

    def run(self, *argv: str) -> tuple[int, str, str, dict[str, int]]:
        counter = CallCounter()
        out, err = io.StringIO(), io.StringIO()
        with counted_sessions(counter):
            code = main(list(argv), out=out, err=err)
        return code, out.getvalue(), err.getvalue(), dict(counter.calls)


def seed(hub: Hub) -> None:
    state: list[dict[str, Any]] = []
    for account, region in MEMBERS:
        last = "2026-11-29T05:00:00Z" if account == A3 else "2026-12-02T05:10:00Z"
        ou_id, ou_name = OUS[account]
        version = "" if account == A3 else "1.4.0"
        state.append(
            member_item(account, region, last_event_at=last, version=version, ou_id=ou_id, ou_name=ou_name)
        )
    runs = {
        (A1, EU, "db"): ("2026-12-02T03:05:00Z", "Failed", 2),
        (A2, US, "db"): ("2026-12-01T03:05:00Z", "TimedOut", 4),
        (A1, EU, "web"): ("2026-12-02T03:00:00Z", "Success", 0),
    }
    for (account, region, group), (instances, compliant) in LATEST.items():
        run = None
        if (account, region, group) in runs:
            at, status, failed = runs[(account, region, group)]
            run = run_facet(at, f"cmd-{account[:1]}-{group}", status, failed, {status: instances})
        since = "" if compliant == instances else "2026-12-01T05:00:00Z"
        state.append(
            group_item(
                account,
                region,
                group,
                at="2026-12-02T05:00:00Z",
                instances=instances,
                compliant=compliant,
                non_compliant_since=since,
                run=run,
            )
        )
    state.append({"pk": {"S": "#hub"}, "sk": {"S": "digest#2026-12-02"}, "body": {"S": "x" * 100}})
    history = []
    for (account, region, group), (instances, compliant) in LATEST.items():
        history.append(
            snapshot_item("2026-11-30T05:00:00Z", account, region, group, instances=instances, compliant=0)
        )
        history.append(
            snapshot_item(
                "2026-12-01T05:00:00Z", account, region, group, instances=instances, compliant=instances // 2
            )
        )
        history.append(
            snapshot_item(
                "2026-12-02T05:00:00Z", account, region, group, instances=instances, compliant=compliant
            )
        )
    # an earlier snapshot the same day: the day's later one (above) is the day's figure
    history.append(snapshot_item("2026-12-01T01:00:00Z", A1, EU, "web", instances=10, compliant=10))
    # a snapshot before the default 30 days of the report: not read
    history.append(snapshot_item("2026-10-01T05:00:00Z", A1, EU, "web", instances=10, compliant=1))
    for (account, region, group), (at, status, failed) in runs.items():
        instances = LATEST[(account, region, group)][0]
        history.append(
            run_item(
                at,
                account,
                region,
                group,
                command_id=f"cmd-{account[:1]}-{group}",
                status=status,
                failed=failed,
                instances=instances,
            )
        )
    history.append(
        run_item(
            "2026-11-20T03:00:00Z",
            A2,
            EU,
            "web",
            command_id="cmd-old",
            status="Failed",
            failed=1,
            instances=8,
        )
    )
    batch_write(hub.dynamodb, hub.state, state)
    batch_write(hub.dynamodb, hub.history, history)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setattr(org, "clock", lambda: NOW)
    with mock_aws():
        made = Hub()
        seed(made)
        yield made


# --------------------------------------------------------------------------------------------
# report --org
# --------------------------------------------------------------------------------------------
def test_report_by_account_reads_the_state_once_and_each_day_once(hub: Hub) -> None:
    # When the operator asks for the organization's report (default: per account, 30 days)
    code, out, err, calls = hub.run("--stack", HUB, "report", "--org")

    # Then: one DescribeStacks, one Scan, one Query per UTC day from 11-02 to 12-02 (31)
    assert code == 0, err
    assert calls == {"DescribeStacks": 1, "Scan": 1, "Query": 31}
    rows = {row[0]: row for row in _rows(out)}
    assert list(rows) == [A2, A1, A3]  # worst first
    # 222: 10 of 18 compliant (50 % the day before), in two regions, 4 groups; non-compliant since
    # 12-01; its last run failed
    assert rows[A2][1:8] == ["Dev", "2", "4", "18", "10", "55.6", "+5.6"]
    assert rows[A2][8] == "2026-12-01T05:00"
    assert rows[A2][9] == "2026-12-01T03:05 TimedOut, 4 failed (db in us-east-1)"
    assert rows[A1][1:8] == ["Prod", "2", "4", "22", "20", "90.9", "+40.9"]
    assert rows[A1][9] == "2026-12-02T03:05 Failed, 2 failed (db in eu-west-1)"
    assert rows[A3][1:10] == ["Prod", "1", "2", "4", "4", "100.0", "+75.0", "-", "-"]
    assert "reading the hub's state table..." in err
    assert "organization: 77.3 % compliant (34 of 44 instances; no filter)" in err


def test_report_by_group_sums_each_group_across_accounts(hub: Hub) -> None:
    code, out, err, calls = hub.run("--stack", HUB, "report", "--org", "--by", "group", "--since", "2d")
    assert code == 0, err
    assert calls == {"DescribeStacks": 1, "Scan": 1, "Query": 3}  # 11-30 (from 05:30), 12-01, 12-02
    rows = {row[0]: row for row in _rows(out)}
    assert list(rows) == ["db", "web"]
    # db: 13 instances in 5 members, 7 compliant; web: 31, 27
    assert rows["db"][1:5] == ["5", "13", "7", "53.8"]
    assert rows["web"][1:5] == ["5", "31", "27", "87.1"]


def test_report_json_carries_one_point_per_day_with_the_days_latest_snapshot(hub: Hub) -> None:
    code, out, err, _ = hub.run("--stack", HUB, "report", "--org", "--format", "json", "--account", A1)
    assert code == 0, err
    document = json.loads(out)
    assert document["by"] == "account"
    assert document["organization"] == {"instances": 22, "compliantInstances": 20, "compliancePercent": 90.91}
    (row,) = document["rows"]
    assert row["account"] == A1
    assert row["regions"] == [EU, US]
    assert [p["day"] for p in row["series"]] == ["2026-11-30", "2026-12-01", "2026-12-02"]
    # 12-01: each group half compliant (5+2+3+1 = 11 of 22); web in eu-west-1's snapshot of 01:00
    # (10 of 10) gave way to the day's later one
    assert [p["compliantInstances"] for p in row["series"]] == [0, 11, 20]
    assert row["lastRun"]["status"] == "Failed"
    assert row["nonCompliantSince"] == "2026-12-01T05:00:00Z"


def test_report_csv_is_the_series_per_row(hub: Hub) -> None:
    code, out, _, _ = hub.run("--stack", HUB, "report", "--org", "--by", "group", "--format", "csv")
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    assert list(lines[0]) == ["group", "day", "instances", "compliant_instances", "compliance_percent"]
    web = [(line["day"], line["compliance_percent"]) for line in lines if line["group"] == "web"]
    assert web == [("2026-11-30", "0.00"), ("2026-12-01", "48.39"), ("2026-12-02", "87.10")]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--ou", "Prod"], {A1, A3}),
        (["--ou", "ou-ab12-dev00001"], {A2}),
        (["--member-region", US], {A1, A2}),
        (["--group", "db", "--ou", "Prod"], {A1, A3}),
    ],
)
def test_report_filters(hub: Hub, filters: list[str], expected: set[str]) -> None:
    code, out, err, calls = hub.run("--stack", HUB, "report", "--org", "--since", "1d", *filters)
    assert code == 0, err
    assert {row[0] for row in _rows(out)} == expected
    assert calls == {"DescribeStacks": 1, "Scan": 1, "Query": 2}


def test_report_filter_by_region_and_group_sums_only_those(hub: Hub) -> None:
    code, out, _, _ = hub.run(
        "--stack", HUB, "report", "--org", "--member-region", US, "--group", "db", "--format", "json"
    )
    assert code == 0
    document = json.loads(out)
    assert {(r["account"], r["instances"], r["compliantInstances"]) for r in document["rows"]} == {
        (A1, 2, 2),
        (A2, 4, 0),
    }
    a2 = next(r for r in document["rows"] if r["account"] == A2)
    assert [p["compliantInstances"] for p in a2["series"]] == [0, 2, 0]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["--ou", "Finance"], "unknown OU 'Finance'"),
        (["--account", "999999999999"], "unknown account '999999999999'"),
        (["--member-region", "ap-south-1"], "unknown region 'ap-south-1'"),
        (["--group", "nope"], "unknown group 'nope'"),
    ],
)
def test_an_unknown_filter_exits_4(hub: Hub, filters: list[str], message: str) -> None:
    code, out, err, _ = hub.run("--stack", HUB, "report", "--org", *filters)
    assert (code, out) == (4, "")
    assert message in err


def test_filters_that_match_nothing_together_exit_5(hub: Hub) -> None:
    code, out, err, calls = hub.run("--stack", HUB, "report", "--org", "--ou", "Dev", "--account", A1)
    assert (code, out) == (5, "")
    assert "no group in the hub matches OU 'Dev', account '111111111111'" in err
    assert calls == {"DescribeStacks": 1, "Scan": 1}  # no history read for nothing


def test_html_report_has_one_series_per_account_and_the_table(hub: Hub, tmp_path: Path) -> None:
    page = tmp_path / "org.html"
    code, _, err, _ = hub.run("--stack", HUB, "report", "--org", "--format", "html", "-o", str(page))
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    series = re.findall(r'<path class="series" data-account="([^"]+)" d="([^"]+)"', text)
    assert [account for account, _ in series] == [A2, A1, A3]
    assert all(len(re.findall(r"[ML]", d)) == 3 for _, d in series)
    assert "Latest per account, worst first" in text
    assert "34 of 44 instances compliant (77.3 %)" in text


def test_html_by_group_names_the_series_by_group(hub: Hub) -> None:
    code, out, _, _ = hub.run("--stack", HUB, "report", "--org", "--by", "group", "--format", "html")
    assert code == 0
    assert set(re.findall(r'data-group="([^"]+)"', out)) == {"web", "db"}
    assert 'aria-label="Compliance % over time per group"' in out


# --------------------------------------------------------------------------------------------
# runs --org
# --------------------------------------------------------------------------------------------
def test_runs_lists_failures_first_from_the_days_in_range(hub: Hub) -> None:
    code, out, err, calls = hub.run("--stack", HUB, "runs", "--org")
    assert code == 0, err
    assert calls == {"DescribeStacks": 1, "Query": 8}  # 11-25 .. 12-02; no Scan without --ou
    rows = _rows(out)
    assert [(row[1], row[3], row[5], row[6]) for row in rows] == [
        (A1, "db", "Failed", "2"),
        (A2, "db", "TimedOut", "4"),
        (A1, "web", "Success", "0"),
    ]
    assert rows[0][0] == "2026-12-02T03:05:00"
    assert rows[0][7] == "4"  # instances: the run's instances per status, summed
    assert "3 runs, 2 failed" in err


def test_runs_since_a_longer_range_and_filters(hub: Hub) -> None:
    code, out, _, calls = hub.run("--stack", HUB, "runs", "--org", "--since", "14d", "--account", A2)
    assert code == 0
    assert [row[4] for row in _rows(out)] == ["cmd-2-db", "cmd-old"]
    assert calls["Query"] == 15
    code, out, _, calls = hub.run("--stack", HUB, "runs", "--org", "--ou", "Prod", "--group", "web")
    assert code == 0
    assert [(row[1], row[3]) for row in _rows(out)] == [(A1, "web")]
    assert calls == {"DescribeStacks": 1, "Scan": 1, "Query": 8}  # the OUs are on the member items


def test_runs_with_none_in_range_exit_5(hub: Hub) -> None:
    code, out, err, _ = hub.run("--stack", HUB, "runs", "--org", "--since", "2h")
    assert (code, out) == (5, "")
    assert "no runs recorded in the hub since 2026-12-02 03:30 UTC" in err


# --------------------------------------------------------------------------------------------
# accounts
# --------------------------------------------------------------------------------------------
def test_accounts_lists_every_member_and_flags_the_silent_one(hub: Hub) -> None:
    code, out, err, calls = hub.run("--stack", HUB, "accounts")
    assert code == 0, err
    assert calls == {"DescribeStacks": 1, "Scan": 1}
    rows = _rows(out)
    assert [(row[0], row[1]) for row in rows] == MEMBERS
    by = {(row[0], row[1]): row for row in rows}
    assert by[(A1, EU)][2:] == ["Prod", "1.4.0", "2026-12-02T05:10:00", "20m", "-", "2", "85.7"]
    assert by[(A3, EU)][2:] == ["Prod", "-", "2026-11-29T05:00:00", "3d", "SILENT", "2", "100.0"]
    assert "5 members, 1 silent (no event for more than 24h)" in err


def test_accounts_silent_after_and_filters_and_formats(hub: Hub) -> None:
    code, out, _, _ = hub.run("--stack", HUB, "accounts", "--silent-after", "10m", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["silentAfterSeconds"] == 600
    assert all(member["silent"] for member in document["members"])
    code, out, _, _ = hub.run("--stack", HUB, "accounts", "--ou", "Dev", "--format", "csv")
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    assert [(line["account"], line["region"], line["compliance_percent"]) for line in lines] == [
        (A2, EU, "60.00"),
        (A2, US, "50.00"),
    ]
    assert list(lines[0])[-1] == "compliance_percent"


def test_accounts_bad_silent_after_is_a_usage_error(hub: Hub) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--stack", HUB, "accounts", "--silent-after", "soon"])
    assert exit_info.value.code == 2


# --------------------------------------------------------------------------------------------
# stacks that are not (or not yet) a hub
# --------------------------------------------------------------------------------------------
def test_a_stack_that_is_not_a_hub_exits_4_and_says_so(hub: Hub) -> None:
    body = json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"GroupsTableName": {"Value": "tagpatch-groups"}},
        }
    )
    hub.cloudformation.create_stack(StackName="tagpatch", TemplateBody=body)
    for argv in (["report", "--org"], ["runs", "--org"], ["accounts"]):
        code, out, err, calls = hub.run("--stack", "tagpatch", *argv)
        assert (code, out) == (4, "")
        assert "stack 'tagpatch' is not a TagPatch hub (no HubStateTableName or HubHistoryTableName" in err
        assert calls == {"DescribeStacks": 1}


def test_an_unknown_stack_exits_4(hub: Hub) -> None:
    code, _, err, _ = hub.run("--stack", "nope", "accounts")
    assert code == 4
    assert "stack 'nope' not found" in err


def test_an_empty_hub_exits_5_everywhere(hub: Hub) -> None:
    create_hub_stack(hub.cloudformation, "empty-hub")
    results = {
        name: hub.run("--stack", "empty-hub", *argv)
        for name, argv in (
            ("report", ["report", "--org"]),
            ("runs", ["runs", "--org"]),
            ("accounts", ["accounts"]),
        )
    }
    assert {name: r[0] for name, r in results.items()} == {"report": 5, "runs": 5, "accounts": 5}
    assert "nothing recorded in the hub yet" in results["report"][2]
    assert results["report"][3] == {"DescribeStacks": 1, "Scan": 1}
    assert "no member recorded in the hub yet" in results["accounts"][2]


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--by", "group"],
        ["report", "--since", "7d"],
        ["runs", "--ou", "Prod"],
        ["report", "--member-region", EU],
    ],
)
def test_org_options_without_org_exit_2(argv: list[str]) -> None:
    err = io.StringIO()
    assert main(argv, out=io.StringIO(), err=err) == 2
    assert "only with --org" in err.getvalue()


def test_a_bad_since_exits_2() -> None:
    err = io.StringIO()
    assert main(["report", "--org", "--since", "last month"], out=io.StringIO(), err=err) == 2
    assert "invalid --since 'last month'" in err.getvalue()


@pytest.mark.parametrize("command", [["report"], ["runs"], ["accounts"]])
def test_help_names_the_org_options(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert "--member-region REGION" in text and "--ou OU" in text
    assert "5  nothing recorded yet" in text


# --------------------------------------------------------------------------------------------
# docs/cli.md shows what these commands print against this seeded hub
# --------------------------------------------------------------------------------------------
DOC_EXAMPLES = [
    ["accounts"],
    ["report", "--org", "--since", "2d"],
    ["report", "--org", "--by", "group", "--since", "2d", "--format", "csv"],
    ["report", "--org", "--account", A3, "--since", "1d", "--format", "json"],
    ["runs", "--org"],
    ["accounts", "--ou", "Dev", "--format", "csv"],
    ["report", "--org", "--ou", "Finance"],
]


def doc_example(hub: Hub) -> str:
    """The commands and what they print (stderr lines marked), as docs/cli.md shows them."""
    blocks = []
    for argv in DOC_EXAMPLES:
        code, out, err, _ = hub.run("--stack", HUB, *argv)
        lines = [f"$ tagpatch --stack {HUB} {shlex.join(argv)}"]
        lines += [f"(stderr) {line}" for line in err.splitlines()]
        lines += out.splitlines()
        lines.append(f"(exit {code})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_docs_example() -> str:
    """``python -c "from tests.integration.test_cli_org import render_docs_example as r; print(r())"``"""
    saved = org.clock
    org.clock = lambda: NOW
    try:
        with mock_aws():
            made = Hub()
            seed(made)
            return doc_example(made)
    finally:
        org.clock = saved


def test_docs_show_what_the_commands_print_against_this_hub(hub: Hub) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert doc_example(hub) in docs, "regenerate docs/cli.md's organization example (render_docs_example)"


# --------------------------------------------------------------------------------------------
# benchmarks/org_report.py on a small organization
# --------------------------------------------------------------------------------------------
def test_the_benchmark_measures_the_cli_at_the_floors_calls() -> None:
    from benchmarks import org_report

    printed: list[str] = []
    figures = org_report.main(
        ["--accounts", "3", "--regions", "2", "--groups", "4", "--days", "3"], out=printed.append
    )

    # Then 3 days seeded (no budget reached), read with 1 Scan and 3 Queries by the floor and by each
    # of the four CLI runs, which found 3 accounts or 4 groups
    assert figures["seed"]["days_seeded"] == 3 and figures["seed"]["limited_by"] is None
    assert figures["seed"]["history_items"] == 3 * 2 * 4 * 3
    assert figures["floor"]["calls"] == {"Scan": 1, "Query": 3}
    assert [(r["by"], r["format"], r["calls"], r["rows"]) for r in figures["runs"]] == [
        ("account", "json", {"Scan": 1, "Query": 3}, 3),
        ("account", "table", {"Scan": 1, "Query": 3}, 3),
        ("group", "json", {"Scan": 1, "Query": 3}, 4),
        ("group", "table", {"Scan": 1, "Query": 3}, 4),
    ]
    assert all(line["calls_ratio"] == 1.0 for line in figures["rows"])
    assert any("report --org --by group --format table (4 rows)" in line for line in printed)


def test_the_benchmark_seeds_fewer_days_when_reading_them_would_exceed_its_budget() -> None:
    from benchmarks import org_report

    printed: list[str] = []
    figures = org_report.main(
        ["--accounts", "2", "--regions", "1", "--groups", "2", "--days", "30", "--read-budget", "0"],
        out=printed.append,
    )
    assert figures["seed"]["days_seeded"] == 1
    assert figures["seed"]["limited_by"] == "read budget"
    assert figures["floor"]["calls"] == {"Scan": 1, "Query": 1}
    assert any(line.startswith("NOTE: 1 day(s), not 30") for line in printed)
