"""The reporter's run-level LowestCompliancePercent metric (what ComplianceBelowThresholdAlarm watches)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tagpatch.handlers import reporter as entry
from tagpatch.observability import metrics
from tagpatch.reporter.compliance import METRIC_LOWEST_COMPLIANCE_PERCENT, GroupOutcome, GroupTotals
from tagpatch.reporter.core import RunResult


def _recorded(group: str, instances: int, compliant: int, percent: str | None) -> GroupOutcome:
    totals = GroupTotals(
        group, "2025-06-01T06:00:00Z", instances, compliant, None if percent is None else Decimal(percent)
    )
    return GroupOutcome(group, "recorded", totals)


def _run_document(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    metrics.flush_metrics()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return next(doc for doc in documents if "ComplianceGroupsRecorded" in doc)


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "namespace", "TagPatch")


def test_the_lowest_compliance_of_the_recorded_groups_is_emitted_without_a_group_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a run that recorded three groups (one without instances) and failed one
    result = RunResult(
        "2025-06-01T06:00:00Z",
        "scheduled",
        [
            _recorded("web", 4, 3, "75.00"),
            _recorded("db", 2, 1, "50.00"),
            _recorded("empty", 0, 0, None),
            GroupOutcome("broken", "failed", error="boom"),
        ],
    )

    # When its metrics are emitted
    entry._emit_metrics(result)

    # Then the run document carries the minimum percentage, by service only, in percent
    run = _run_document(capsys)
    assert run[METRIC_LOWEST_COMPLIANCE_PERCENT] == [50.0]
    definition = run["_aws"]["CloudWatchMetrics"][0]  # type: ignore[index]
    assert definition["Namespace"] == "TagPatch"
    assert definition["Dimensions"] == [["service"]]
    units = {m["Name"]: m["Unit"] for m in definition["Metrics"]}
    assert units[METRIC_LOWEST_COMPLIANCE_PERCENT] == "Percent"


def test_no_lowest_compliance_when_no_group_has_a_percentage(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a run whose only recorded group has no instances
    result = RunResult("2025-06-01T06:00:00Z", "scheduled", [_recorded("empty", 0, 0, None)])

    # When its metrics are emitted
    entry._emit_metrics(result)

    # Then nothing claims a lowest percentage (an alarm treats the missing datum as not breaching)
    assert METRIC_LOWEST_COMPLIANCE_PERCENT not in _run_document(capsys)
