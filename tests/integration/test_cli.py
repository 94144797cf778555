"""The ``tagpatch`` CLI against the deployed stack on the local emulator (moto's server).

One emulator for the module: ``template.yaml`` deployed, the demo's flows driven (tags,
reconcile, a window run per group with two failures) and two compliance snapshots a week apart
(:func:`emulator.operator.operator_stack`). The CLI finds everything from the stack's Outputs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.operator import OperatorStack, operator_stack, run_cli
from tagpatch.cli.app import GROUPS_HEADER, main
from tagpatch.cli.stack import DEFAULT_STACK

GROUPS = {"web", "db", "Batch Jobs"}


@pytest.fixture(scope="module")
def stack() -> Iterator[OperatorStack]:
    with operator_stack() as running:
        assert not running.result.failed_invocations
        yield running


def _rows(text: str) -> list[list[str]]:
    """The data rows of a table (header and rule skipped), split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()[2:]]


def test_groups_shows_each_group_with_schedule_instances_last_run_and_compliance(
    stack: OperatorStack,
) -> None:
    # When the operator lists the groups
    code, out, err = run_cli(stack, ["groups"])

    # Then each managed group has its window schedule, time zone, instance count, last run and compliance
    assert code == 0, err
    assert re.split(r"\s{2,}", out.splitlines()[0]) == list(GROUPS_HEADER)
    rows = {row[0]: row for row in _rows(out)}
    assert set(rows) == GROUPS
    assert rows["web"][1:5] == ["converged", "3", "cron(0 3 ? * SUN *)", "UTC"]
    assert rows["db"][3] == "cron(0 2 ? * SAT *)"  # the db group's settings override
    assert rows["db"][6].endswith("1 failed (1/2 ok)")
    assert rows["web"][6].endswith("Success (3/3 ok)")
    assert (rows["web"][7], rows["db"][7], rows["Batch Jobs"][7]) == ("100.0", "50.0", "50.0")
    # three groups' windows are at most SSM's 5 executions at once: no start collision to show
    assert {row[8] for row in rows.values()} == {"-"}
    assert "reading 3 groups" in err
    # web and Batch Jobs share the stack default's window; db's schedule has a window of its own
    window = {group: stack.flows.group_record(group)["windows"]["install"]["window_id"] for group in GROUPS}
    assert window["web"] == window["Batch Jobs"] != window["db"]


def test_groups_of_an_unknown_group_exits_4(stack: OperatorStack) -> None:
    code, out, err = run_cli(stack, ["groups", "--group", "nope"])
    assert (code, out) == (4, "")
    assert "unknown group 'nope'" in err


def test_runs_lists_per_instance_results_failures_first(stack: OperatorStack) -> None:
    # When the operator lists the last day's runs
    code, out, err = run_cli(stack, ["runs", "--since", "1d"])

    # Then all 7 instance results are there, the two failures first, with the group's tag value
    assert code == 0, err
    rows = _rows(out)
    assert len(rows) == 7
    assert [(row[1], row[4]) for row in rows[:2]] == [("Batch Jobs", "TimedOut"), ("db", "Failed")] or [
        (row[1], row[4]) for row in rows[:2]
    ] == [("db", "Failed"), ("Batch Jobs", "TimedOut")]
    assert {row[4] for row in rows[2:]} == {"Success"}
    assert "7 instance results, 2 failed" in err


def test_runs_of_one_group(stack: OperatorStack) -> None:
    code, out, _ = run_cli(stack, ["runs", "--group", "web"])
    assert code == 0
    assert {(row[1], row[4]) for row in _rows(out)} == {("web", "Success")}
    assert len(_rows(out)) == 3


def test_runs_since_the_future_exits_5_and_a_bad_since_exits_2(stack: OperatorStack) -> None:
    code, out, err = run_cli(stack, ["runs", "--since", "2999-01-01"])
    assert (code, out) == (5, "")
    assert "no runs recorded since 2999-01-01" in err
    code, _, err = run_cli(stack, ["runs", "--since", "yesterday"])
    assert code == 2
    assert "invalid --since 'yesterday'" in err


def test_report_table_shows_the_latest_snapshot_and_the_change(stack: OperatorStack) -> None:
    code, out, err = run_cli(stack, ["report"])
    assert code == 0, err
    rows = {row[0]: row for row in _rows(out)}
    assert set(rows) == GROUPS
    assert rows["web"][2:] == ["3", "3", "100.0", "+33.3", "2"]
    assert rows["db"][2:] == ["2", "1", "50.0", "+50.0", "2"]
    assert "[3/3] reading the compliance history" in err


def test_report_csv_and_json_carry_the_trend(stack: OperatorStack) -> None:
    # When the report is asked for as CSV and as JSON
    code, out, _ = run_cli(stack, ["report", "--format", "csv"])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    code, text, _ = run_cli(stack, ["report", "--format", "json", "--group", "web"])
    assert code == 0
    document = json.loads(text)

    # Then both hold two snapshots per group, oldest first
    assert len(rows) == 6
    web = [row for row in rows if row["group"] == "web"]
    assert [row["compliance_percent"] for row in web] == ["66.67", "100.00"]
    assert [g["group"] for g in document["groups"]] == ["web"]
    assert [p["compliancePercent"] for p in document["groups"][0]["trend"]] == [66.67, 100.0]
    assert document["groups"][0]["latest"]["instances"] == 3


def test_html_report_renders_in_headless_chromium_with_one_line_per_group(
    stack: OperatorStack, tmp_path: Path
) -> None:
    # Given the html report written to a file
    page = tmp_path / "report.html"
    code, _, err = run_cli(stack, ["report", "--format", "html", "--output", str(page)])
    assert code == 0, err
    assert f"wrote {page}" in err
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")

    # When headless Chromium loads it (no network, a fresh profile) and dumps the DOM
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is needed: `make chromium` installs it"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    # Then the parsed page holds the chart with one series per group, each with two points
    assert '<svg id="compliance-chart"' in dom
    series = re.findall(r'<path class="series" data-group="([^"]+)" d="([^"]+)"', dom)
    assert {group for group, _ in series} == GROUPS
    assert all(len(re.findall(r"[ML]", d)) == 2 for _, d in series)
    assert "Latest snapshot" in dom


def test_reconcile_dry_run_of_one_group_plans_without_changing_anything(stack: OperatorStack) -> None:
    # Given the web group's record
    before = stack.flows.group_record("web")

    # When the operator plans a reconcile of web
    code, out, err = run_cli(stack, ["reconcile", "--group", "web", "--dry-run"])

    # Then the plan is shown and the record is untouched
    assert code == 0, err
    assert _rows(out)[0][:2] == ["web", "planned"]
    assert "planning web" in err
    assert stack.flows.group_record("web") == before


def test_reconcile_applies_every_group_and_shows_refusals(stack: OperatorStack) -> None:
    code, out, err = run_cli(stack, ["reconcile"])
    assert code == 0, err
    rows = {row[0]: row for row in _rows(out)}
    assert set(rows) == GROUPS
    assert rows["Batch Jobs"][1] == "refused"
    assert "duration" in rows["Batch Jobs"][3]
    assert rows["web"][1] in {"unchanged", "converged"}


def test_reconcile_of_an_unknown_group_exits_4(stack: OperatorStack) -> None:
    code, _, err = run_cli(stack, ["reconcile", "--group", "ghost", "--dry-run"])
    assert code == 4
    assert "unknown group 'ghost'" in err


def test_an_unknown_stack_exits_4(stack: OperatorStack) -> None:
    code, _, err = run_cli(stack, ["--stack", "not-tagpatch", "groups"])
    assert code == 4
    assert "stack 'not-tagpatch' not found" in err


def test_empty_tables_exit_5(stack: OperatorStack) -> None:
    # Given a stack whose tables hold nothing yet
    table = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "AttributeDefinitions": [{"AttributeName": "group", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    }
    outputs = {
        name: {"Value": {"Ref": "Empty"}}
        for name in ("GroupsTableName", "CommandStatusTableName", "ComplianceTableName")
    }
    body = json.dumps({"Resources": {"Empty": table}, "Outputs": outputs})
    stack.emulator.client("cloudformation").create_stack(StackName="empty", TemplateBody=body)

    # When the operator asks for groups, runs and the report
    results = [run_cli(stack, ["--stack", "empty", *argv]) for argv in (["groups"], ["runs"], ["report"])]

    # Then each exits 5 and says there is nothing yet
    assert [code for code, _, _ in results] == [5, 5, 5]
    assert all("no groups recorded yet" in err for _, _, err in results)


def test_groups_shows_the_start_collision_of_windows_over_ssms_limit(stack: OperatorStack) -> None:
    # Given a stack (the deployed one's run and compliance tables) whose groups table records 6
    # groups, each with its own window on the default schedule, as a newer reconciler writes them
    cloudformation = stack.emulator.client("cloudformation")
    deployed = cloudformation.describe_stacks(StackName=DEFAULT_STACK)["Stacks"][0]["Outputs"]
    tables = {o["OutputKey"]: o["OutputValue"] for o in deployed if o["OutputKey"].endswith("TableName")}
    table = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "AttributeDefinitions": [{"AttributeName": "group", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    }
    outputs = {
        "GroupsTableName": {"Value": {"Ref": "Crowded"}},
        "CommandStatusTableName": {"Value": tables["CommandStatusTableName"]},
        "ComplianceTableName": {"Value": tables["ComplianceTableName"]},
    }
    body = json.dumps({"Resources": {"Crowded": table}, "Outputs": outputs})
    cloudformation.create_stack(StackName="crowded", TemplateBody=body)
    groups_table = next(
        o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="crowded")["Stacks"][0]["Outputs"]
        if o["OutputKey"] == "GroupsTableName"
    )
    for n in range(6):
        facts = {
            "window_id": f"mw-{n:017x}",
            "target_id": "t",
            "task_id": "k",
            "schedule": "cron(0 3 ? * SUN *)",
            "timezone": "UTC",
            "offset": "0",
        }
        stack.emulator.client("dynamodb").put_item(
            TableName=groups_table,
            Item={
                "group": {"S": f"crowd-{n}"},
                "status": {"S": "converged"},
                "windows": {"M": {"install": {"M": {k: {"S": v} for k, v in facts.items()}}}},
            },
        )

    # When the operator lists the groups, with SSM's default limit and with a raised one
    code, out, err = run_cli(stack, ["--stack", "crowded", "groups"])
    raised_code, raised_out, _ = run_cli(stack, ["--stack", "crowded", "groups", "--concurrent-limit", "6"])

    # Then every group's STARTS names the next Sunday's collision, and none with a limit of 6
    assert (code, raised_code) == (0, 0), err
    starts = {row[0]: row[-1] for row in _rows(out)}
    assert set(starts) == {f"crowd-{n}" for n in range(6)}
    assert all(
        re.fullmatch(r"6 windows start at Sun \d{4}-\d\d-\d\d 03:00 UTC; SSM runs 5 at once", note)
        for note in starts.values()
    ), starts
    assert {row[-1] for row in _rows(raised_out)} == {"-"}


def test_no_credentials_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no credentials anywhere (no environment keys, empty config files, no instance metadata)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out, err = io.StringIO(), io.StringIO()

    # When any command runs
    code = main(["--endpoint-url", "http://127.0.0.1:9", "groups"], out=out, err=err)

    # Then it exits 3 with a clear message
    assert code == 3
    assert "no usable AWS credentials" in err.getvalue()


def test_unknown_profile_exits_3() -> None:
    err = io.StringIO()
    assert main(["--profile", "nope", "groups"], out=io.StringIO(), err=err) == 3
    assert "nope" in err.getvalue()


@pytest.mark.parametrize("argv", [[], ["groups", "--bogus"], ["report", "--format", "pdf"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: tagpatch" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["groups", "runs", "report", "reconcile"])
def test_help_everywhere_documents_the_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: tagpatch {command}" in text
    assert "5  nothing recorded yet" in text


def test_reconcile_dry_run_of_every_group_plans_each(stack: OperatorStack) -> None:
    code, out, err = run_cli(stack, ["reconcile", "--dry-run"])
    assert code == 0, err
    assert {row[0]: row[1] for row in _rows(out)} == {
        "Batch Jobs": "refused",
        "db": "planned",
        "web": "planned",
    }
    assert "[3/3] planning web" in err


def test_the_module_runs_as_the_tagpatch_command() -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tagpatch.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "usage: tagpatch" in result.stdout


def test_reconcile_dry_run_shows_the_repair_of_a_drifted_window_and_changes_nothing(
    stack: OperatorStack,
) -> None:
    # Given web's window schedule edited by hand (the window web shares with Batch Jobs)
    ssm = stack.emulator.client("ssm")
    window_id = stack.flows.group_record("web")["windows"]["install"]["window_id"]
    assert stack.flows.group_record("Batch Jobs")["windows"]["install"]["window_id"] == window_id
    ssm.update_maintenance_window(WindowId=window_id, Schedule="cron(0 9 ? * MON *)")

    # When the operator plans, then applies, a reconcile of web
    code, planned, _ = run_cli(stack, ["reconcile", "--group", "web", "--dry-run"])
    drifted = ssm.get_maintenance_window(WindowId=window_id)["Schedule"]
    applied_code, applied, _ = run_cli(stack, ["reconcile", "--group", "web"])

    # Then the plan names the window update without making it, and the apply makes it
    assert (code, applied_code) == (0, 0)
    assert "update_window" in planned and "window drifted [Schedule]" in planned
    assert drifted == "cron(0 9 ? * MON *)"
    assert _rows(applied)[0][:2] == ["web", "converged"]
    assert ssm.get_maintenance_window(WindowId=window_id)["Schedule"] == "cron(0 3 ? * SUN *)"
    code, out, err = run_cli(stack, ["groups", "--group", "Batch Jobs"])  # repaired for both
    assert code == 0, err
    assert _rows(out)[0][3] == "cron(0 3 ? * SUN *)"


def test_an_unwritable_output_file_exits_1(stack: OperatorStack, tmp_path: Path) -> None:
    code, out, err = run_cli(
        stack, ["report", "--format", "json", "-o", str(tmp_path / "missing" / "r.json")]
    )
    assert (code, out) == (1, "")
    assert "cannot write" in err


def _main_with_environment(
    stack: OperatorStack, monkeypatch: pytest.MonkeyPatch, region_env: dict[str, str | None], argv: list[str]
) -> tuple[int, str, str]:
    """``tagpatch --endpoint-url <emulator> <argv>`` with the admin's keys and these region variables."""
    admin = stack.emulator.admin
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", admin.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", admin.secret_access_key)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in region_env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--endpoint-url", stack.endpoint_url, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_aws_region_alone_selects_the_region(stack: OperatorStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given only AWS_REGION set (as the README and samconfig.toml say), no AWS_DEFAULT_REGION
    env = {"AWS_REGION": stack.emulator.region, "AWS_DEFAULT_REGION": None}

    # When the operator lists the groups
    code, out, err = _main_with_environment(stack, monkeypatch, env, ["groups"])

    # Then the stack is found in that region
    assert code == 0, err
    assert {row[0] for row in _rows(out)} == GROUPS


def test_aws_region_wins_over_aws_default_region(
    stack: OperatorStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given AWS_REGION naming a region without the stack, AWS_DEFAULT_REGION the stack's
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": stack.emulator.region}

    # When the operator lists the groups
    code, out, err = _main_with_environment(stack, monkeypatch, env, ["groups"])

    # Then AWS_REGION was used: the stack is not found there
    assert (code, out) == (4, "")
    assert "not found in eu-west-1" in err


def test_the_region_flag_wins_over_aws_region(stack: OperatorStack, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    code, out, err = _main_with_environment(stack, monkeypatch, env, ["groups", "--region", "us-east-1"])
    assert code == 0, err
    assert {row[0] for row in _rows(out)} == GROUPS


def test_no_region_says_the_region_is_missing_and_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given credentials but no region anywhere (no variables, an empty config file)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    out, err = io.StringIO(), io.StringIO()

    # When any command runs
    code = main(["--endpoint-url", "http://127.0.0.1:9", "groups"], out=out, err=err)

    # Then it exits 3 and names the missing region and the ways to set it, not the credentials
    message = err.getvalue()
    assert code == 3
    assert "no AWS region" in message
    assert all(way in message for way in ("--region", "AWS_REGION", "aws configure"))
    assert "credentials" not in message


def test_groups_help_shows_a_single_percent_sign(capsys: pytest.CaptureFixture[str]) -> None:
    # When the operator reads the top-level and the groups help
    texts = []
    for argv in (["--help"], ["groups", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        texts.append(capsys.readouterr().out)

    # Then both say "compliance %" with no doubled sign
    for text in texts:
        assert "compliance %" in " ".join(text.split())
        assert "%%" not in text


def test_report_help_explains_each_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = text.rsplit("--format {table,csv,json,html}", 1)[1]  # the options list, not the usage
    described = options.split("--output OUTPUT", 1)[0]
    assert "(default: table)" in described
    assert all(name in described for name in ("csv", "json", "html"))
