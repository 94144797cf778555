"""The operations dashboard and alarms: a valid body that refers to metrics the code really emits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tagpatch.handlers.reconciler import _METRIC_OF_STATUS

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("ReconcilerFunction", "StatusCollectorFunction", "ComplianceReporterFunction")
QUEUES = ("ReconcilerDLQ", "StatusDLQ", "ReporterDLQ", "ReportDLQ")
SERVICE = "tagpatch"  # POWERTOOLS_SERVICE_NAME: the "service" dimension of every TagPatch metric


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(ROOT / "template.yaml")))


def _dummy(name: str) -> str:
    return {"AWS::Region": "eu-west-1", "AWS::StackName": "tagpatch", "ComplianceAlarmThreshold": "90"}.get(
        name, f"<{name}>"
    )


@pytest.fixture(scope="module")
def body(template: dict[str, Any]) -> dict[str, Any]:
    source = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(source, str)
    return dict(json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: _dummy(m.group(1)), source)))


def _emitted() -> set[str]:
    """Every metric name the code emits: add_metric literals, collector counters, metric constants."""
    names = set(_METRIC_OF_STATUS.values())
    for path in (ROOT / "src" / "tagpatch").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'add_metric\(\s*name="(\w+)"', text))
        for key in re.findall(r"counters\[([^\]]+)\]", text):
            names |= set(re.findall(r'"(\w+)"', key))
        names |= set(re.findall(r'^METRIC_\w+ = "(\w+)"', text, flags=re.MULTILINE))
    return names


def _metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [metric for widget in body["widgets"] for metric in widget["properties"]["metrics"]]


def _searched_names(body: dict[str, Any]) -> set[str]:
    return {
        name
        for metric in _metrics(body)
        if isinstance(metric[0], dict)
        for name in re.findall(r'MetricName="(\w+)"', metric[0]["expression"])
    }


def test_the_body_is_valid_json_of_metric_widgets_in_the_stack_region(body: dict[str, Any]) -> None:
    # Given the dashboard body with its substitutions resolved
    widgets = body["widgets"]

    # Then every widget is a metric widget of this region with a title and metrics
    assert len(widgets) >= 6
    for widget in widgets:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "eu-west-1"
        assert widget["properties"]["title"]
        assert widget["properties"]["metrics"]


def test_every_tagpatch_metric_on_the_dashboard_is_emitted_by_the_code(body: dict[str, Any]) -> None:
    # Given the TagPatch-namespace metric names the dashboard plots or searches
    plotted = {m[1] for m in _metrics(body) if isinstance(m[0], str) and m[0] == "TagPatch"}
    searched = _searched_names(body)

    # Then each one is emitted somewhere in src/tagpatch, under the service dimension
    assert "CompliancePercent" in searched
    assert plotted
    assert (plotted | searched) - _emitted() == set()
    for metric in _metrics(body):
        if isinstance(metric[0], str) and metric[0] == "TagPatch":
            assert metric[2:4] == ["service", SERVICE], metric


def test_the_search_groups_compliance_by_patch_group(body: dict[str, Any]) -> None:
    expressions = [m[0]["expression"] for m in _metrics(body) if isinstance(m[0], dict)]
    assert any(e.startswith("SEARCH('{TagPatch,PatchGroup,service}") for e in expressions)


def test_dlq_depth_and_function_health_cover_every_queue_and_function(body: dict[str, Any]) -> None:
    # Given the AWS-namespace metrics of the dashboard
    plotted = {
        (m[0], m[1], m[3]) for m in _metrics(body) if isinstance(m[0], str) and m[0].startswith("AWS/")
    }

    # Then each DLQ's depth and each function's errors, throttles and duration are there
    for queue in QUEUES:
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"<{queue}.QueueName>") in plotted
    for function in FUNCTIONS:
        for name in ("Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", name, f"<{function}>") in plotted


def test_every_function_has_an_errors_alarm_to_the_alert_topic(template: dict[str, Any]) -> None:
    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    for function in FUNCTIONS:
        matching = [
            a
            for a in alarms
            if a.get("Namespace") == "AWS/Lambda"
            and a.get("MetricName") == "Errors"
            and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
        ]
        assert len(matching) == 1, function
        assert matching[0]["Threshold"] == 1
        assert matching[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert matching[0]["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_compliance_alarm_watches_an_emitted_metric_against_the_parameter(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["ComplianceBelowThresholdAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("TagPatch", "LowestCompliancePercent")
    assert alarm["MetricName"] in _emitted()
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert alarm["Threshold"] == {"Ref": "ComplianceAlarmThreshold"}
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert template["Parameters"]["ComplianceAlarmThreshold"]["Default"] == 90


def test_the_service_dimension_is_the_powertools_service_name(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == SERVICE


def test_failed_alert_publishes_are_alarmed_to_the_alert_topic(template: dict[str, Any]) -> None:
    # Issue 12 item 6: an SNS or KMS outage must not pass silently
    alarm = template["Resources"]["AlertPublishFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("TagPatch", "AlertPublishFailures")
    assert alarm["MetricName"] in _emitted()
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
