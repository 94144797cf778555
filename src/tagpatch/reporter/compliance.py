"""Compliance maths: SSM patch states -> instance rows, group totals, metric values and a digest.

Pure: no boto3, no clock (times are passed in), no I/O.

Compliance definition
---------------------
An instance (a managed node reporting an ``InstancePatchState`` in the group) is **compliant**
when every one of these counts is 0 (a count SSM leaves out counts as 0):

* ``MissingCount``                  - applicable patches not installed;
* ``FailedCount``                   - patches whose installation failed;
* ``InstalledPendingRebootCount``   - installed but waiting for a reboot (SSM itself reports such
  nodes as NON_COMPLIANT: a pending reboot is **not** compliant);
* ``InstalledRejectedCount``        - patches on the baseline's rejected list that are installed
  (SSM reports 0 here when the baseline allows rejected patches as dependencies);
* ``CriticalNonCompliantCount``, ``SecurityNonCompliantCount``, ``OtherNonCompliantCount`` -
  SSM's own per-severity non-compliant counts (subsets of the above; checked so that a node SSM
  calls non-compliant is never counted as compliant here).

``InstalledOtherCount``, ``NotApplicableCount`` and ``UnreportedNotApplicableCount`` do not
affect compliance.

A group's **compliance percentage** is ``compliant instances / instances * 100``, rounded to two
decimals, over the instances that reported a patch state in the snapshot. A group with no
instances has **no** percentage (``None``, shown as ``n/a``, and no ``CompliancePercent``
datapoint): an empty group is not reported as 100 % compliant. The overall percentage in the
digest is the same ratio over every recorded group's instances.

The totals are computed from the per-instance states (one consistent source); the
``DescribePatchGroupState`` response is stored verbatim beside them (``group_state``), every
field it returned and no field it left out (``InstancesWithAvailableSecurityUpdates`` is absent
from older responses and stays absent rather than becoming 0).

Non-compliant since
-------------------
Each instance row carries ``non_compliant_since`` (ISO 8601 UTC) while the instance is not
compliant: the value of the previous snapshot's row when that row was non-compliant too,
otherwise the earliest evidence we have - the end of the SSM operation that reported the
non-compliant state (or the snapshot time, if that is earlier). A compliant instance has no
``non_compliant_since``; the clock starts again when it next becomes non-compliant.
``critical_missing_since`` works the same way for ``CriticalNonCompliantCount > 0``, so the SLA
"no critical patch missing for more than 7 days" is read off one row
(``snapshot time - critical_missing_since > 7 days``) and counted per group as
``critical_sla_breaches``.

How the reporter uses this (idempotency, failures, scale and fan-out): :mod:`tagpatch.reporter.core`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tagpatch.models.display import one_line, quoted
from tagpatch.naming import group_slug

SLA_DAYS = 7
WORST_INSTANCES = 10
PATCH_GROUP_MAX_LENGTH = 256
SUBJECT_MAX_LENGTH = 99  # SNS: "must be less than 100 characters"
BODY_MAX_BYTES = 250_000  # SNS messages are at most 256 KiB
_TWO_PLACES = Decimal("0.01")
_PATCH_GROUP_PUNCTUATION = frozenset("_.:/=+-@")

#: InstancePatchState count member -> instance row attribute.
COUNT_FIELDS: Mapping[str, str] = {
    "InstalledCount": "installed",
    "InstalledOtherCount": "installed_other",
    "InstalledPendingRebootCount": "installed_pending_reboot",
    "InstalledRejectedCount": "installed_rejected",
    "MissingCount": "missing",
    "FailedCount": "failed",
    "NotApplicableCount": "not_applicable",
    "UnreportedNotApplicableCount": "unreported_not_applicable",
    "CriticalNonCompliantCount": "critical_non_compliant",
    "SecurityNonCompliantCount": "security_non_compliant",
    "OtherNonCompliantCount": "other_non_compliant",
    "AvailableSecurityUpdateCount": "available_security_updates",
}
#: Counts that make an instance non-compliant when above 0.
NON_COMPLIANT_COUNTS = (
    "missing",
    "failed",
    "installed_pending_reboot",
    "installed_rejected",
    "critical_non_compliant",
    "security_non_compliant",
    "other_non_compliant",
)
#: Optional InstancePatchState strings/timestamps -> instance row attribute.
DETAIL_FIELDS: Mapping[str, str] = {
    "SnapshotId": "patch_snapshot_id",
    "RebootOption": "reboot_option",
    "InstallOverrideList": "install_override_list",
    "LastNoRebootInstallOperationTime": "last_no_reboot_install_operation_time",
}
#: Sums over instances stored in a snapshot's totals: totals attribute -> instance row count.
PATCH_SUMS: Mapping[str, str] = {
    "missing_patches": "missing",
    "failed_patches": "failed",
    "installed_pending_reboot_patches": "installed_pending_reboot",
    "installed_rejected_patches": "installed_rejected",
    "critical_non_compliant_patches": "critical_non_compliant",
    "security_non_compliant_patches": "security_non_compliant",
    "other_non_compliant_patches": "other_non_compliant",
}


class InvalidPatchState(ValueError):
    """An InstancePatchState lacks a member the API model marks as required."""


# --------------------------------------------------------------------------------------------
# Times and names
# --------------------------------------------------------------------------------------------
def iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC to the second (``2025-06-01T06:00:00Z``); naive means UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def snapshot_id_for(moment: datetime) -> str:
    """The snapshot id of a run at ``moment``: its time, so it sorts by time and a redelivered
    scheduled event (same ``time``) names the same snapshot."""
    return iso(moment)


def is_valid_patch_group(name: str) -> bool:
    """The API's PatchGroup rule: 1-256 characters matching ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``."""
    if not 1 <= len(name) <= PATCH_GROUP_MAX_LENGTH:
        return False
    return all(char in _PATCH_GROUP_PUNCTUATION or unicodedata.category(char)[0] in "LZN" for char in name)


# --------------------------------------------------------------------------------------------
# Instance rows
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Since:
    """What carries over from an instance's row in the previous snapshot."""

    non_compliant_since: str | None = None
    critical_missing_since: str | None = None


@dataclass(frozen=True)
class InstanceRow:
    instance_id: str
    baseline_id: str
    operation: str
    operation_start_time: str
    operation_end_time: str
    counts: Mapping[str, int]  # row attribute -> value, only the counts SSM returned
    details: Mapping[str, str] = field(default_factory=dict)
    compliant: bool = True
    non_compliant_since: str | None = None
    critical_missing_since: str | None = None

    def count(self, name: str) -> int:
        return self.counts.get(name, 0)

    @property
    def severe_patches(self) -> int:
        return self.count("critical_non_compliant") + self.count("security_non_compliant")

    def attributes(self) -> dict[str, Any]:
        """The row as stored (no keys, no TTL); absent values are left out."""
        data: dict[str, Any] = {
            "instance_id": self.instance_id,
            "baseline_id": self.baseline_id,
            "operation": self.operation,
            "operation_start_time": self.operation_start_time,
            "operation_end_time": self.operation_end_time,
            "compliant": self.compliant,
            **self.counts,
            **self.details,
        }
        if self.non_compliant_since:
            data["non_compliant_since"] = self.non_compliant_since
        if self.critical_missing_since:
            data["critical_missing_since"] = self.critical_missing_since
        return data

    @classmethod
    def from_attributes(cls, data: Mapping[str, Any]) -> InstanceRow:
        return cls(
            instance_id=str(data["instance_id"]),
            baseline_id=str(data.get("baseline_id", "")),
            operation=str(data.get("operation", "")),
            operation_start_time=str(data.get("operation_start_time", "")),
            operation_end_time=str(data.get("operation_end_time", "")),
            counts={name: int(data[name]) for name in COUNT_FIELDS.values() if name in data},
            details={name: str(data[name]) for name in DETAIL_FIELDS.values() if name in data},
            compliant=bool(data.get("compliant", True)),
            non_compliant_since=_optional_str(data.get("non_compliant_since")),
            critical_missing_since=_optional_str(data.get("critical_missing_since")),
        )

    def since(self) -> Since:
        return Since(self.non_compliant_since, self.critical_missing_since)


def _optional_str(value: Any) -> str | None:
    return str(value) if value else None


def _as_iso(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    return iso(parse_iso(str(value)))


def is_compliant(counts: Mapping[str, int]) -> bool:
    """The compliance definition of the module docstring, on row counts."""
    return all(counts.get(name, 0) == 0 for name in NON_COMPLIANT_COUNTS)


def instance_row(state: Mapping[str, Any], previous: Since | None, snapshot_time: datetime) -> InstanceRow:
    """One ``InstancePatchState`` (boto3 shape) -> its row, carrying the since-dates over."""
    missing = [
        name
        for name in ("InstanceId", "BaselineId", "Operation", "OperationStartTime", "OperationEndTime")
        if state.get(name) in (None, "")
    ]
    if missing:
        raise InvalidPatchState(f"patch state of {state.get('InstanceId', '?')} lacks {', '.join(missing)}")
    counts = {
        row: int(state[member]) for member, row in COUNT_FIELDS.items() if state.get(member) is not None
    }
    details = {
        row: (_as_iso(state[member]) if member.endswith("Time") else str(state[member]))
        for member, row in DETAIL_FIELDS.items()
        if state.get(member) not in (None, "")
    }
    observed = min(parse_iso(_as_iso(state["OperationEndTime"])), snapshot_time.astimezone(UTC))
    compliant = is_compliant(counts)
    prior = previous or Since()
    non_compliant_since = None if compliant else (prior.non_compliant_since or iso(observed))
    critical_missing_since = (
        (prior.critical_missing_since or iso(observed))
        if counts.get("critical_non_compliant", 0) > 0
        else None
    )
    return InstanceRow(
        instance_id=str(state["InstanceId"]),
        baseline_id=str(state["BaselineId"]),
        operation=str(state["Operation"]),
        operation_start_time=_as_iso(state["OperationStartTime"]),
        operation_end_time=_as_iso(state["OperationEndTime"]),
        counts=counts,
        details=details,
        compliant=compliant,
        non_compliant_since=non_compliant_since,
        critical_missing_since=critical_missing_since,
    )


def _latest_per_instance(states: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One state per instance (the most recent operation wins), in first-seen order: a listing
    that pages while SSM updates a node may return it twice."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for state in states:
        instance_id = str(state.get("InstanceId", ""))
        current = chosen.get(instance_id)
        if current is None or _as_iso(state["OperationEndTime"]) >= _as_iso(current["OperationEndTime"]):
            chosen[instance_id] = state
    return list(chosen.values())


# --------------------------------------------------------------------------------------------
# Group totals
# --------------------------------------------------------------------------------------------
def compliance_percent(compliant: int, instances: int) -> Decimal | None:
    if instances <= 0:
        return None
    return (Decimal(compliant) * 100 / Decimal(instances)).quantize(_TWO_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class GroupTotals:
    group: str
    snapshot_id: str
    instances: int
    compliant_instances: int
    compliance_percent: Decimal | None
    pending_reboot_instances: int = 0
    critical_instances: int = 0
    critical_sla_breaches: int = 0
    patches: Mapping[str, int] = field(default_factory=dict)  # PATCH_SUMS attribute -> sum
    oldest_non_compliant_since: str | None = None
    group_state: Mapping[str, int] = field(default_factory=dict)
    previous_snapshot_id: str | None = None
    previous_compliance_percent: Decimal | None = None
    managed: bool = False
    baselines: tuple[str, ...] = ()
    source: str = "scheduled"
    taken_at: str = ""

    @property
    def non_compliant_instances(self) -> int:
        return self.instances - self.compliant_instances

    @property
    def compliance_change(self) -> Decimal | None:
        """Percentage points since the previous snapshot; None without two percentages."""
        if self.compliance_percent is None or self.previous_compliance_percent is None:
            return None
        return self.compliance_percent - self.previous_compliance_percent

    def patch_count(self, name: str) -> int:
        return self.patches.get(name, 0)

    def attributes(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "group": self.group,
            "snapshot_id": self.snapshot_id,
            "source": self.source,
            "taken_at": self.taken_at,
            "managed": self.managed,
            "instances": self.instances,
            "compliant_instances": self.compliant_instances,
            "non_compliant_instances": self.non_compliant_instances,
            "pending_reboot_instances": self.pending_reboot_instances,
            "critical_instances": self.critical_instances,
            "critical_sla_breaches": self.critical_sla_breaches,
            **{name: self.patch_count(name) for name in PATCH_SUMS},
            "group_state": dict(self.group_state),
        }
        optional: dict[str, Any] = {
            "compliance_percent": self.compliance_percent,
            "oldest_non_compliant_since": self.oldest_non_compliant_since,
            "previous_snapshot_id": self.previous_snapshot_id,
            "previous_compliance_percent": self.previous_compliance_percent,
            "compliance_change": self.compliance_change,
            "baselines": list(self.baselines) or None,
        }
        data.update({name: value for name, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_attributes(cls, data: Mapping[str, Any]) -> GroupTotals:
        def decimal_or_none(name: str) -> Decimal | None:
            value = data.get(name)
            return None if value is None else Decimal(str(value))

        return cls(
            group=str(data["group"]),
            snapshot_id=str(data["snapshot_id"]),
            instances=int(data.get("instances", 0)),
            compliant_instances=int(data.get("compliant_instances", 0)),
            compliance_percent=decimal_or_none("compliance_percent"),
            pending_reboot_instances=int(data.get("pending_reboot_instances", 0)),
            critical_instances=int(data.get("critical_instances", 0)),
            critical_sla_breaches=int(data.get("critical_sla_breaches", 0)),
            patches={name: int(data.get(name, 0)) for name in PATCH_SUMS},
            oldest_non_compliant_since=_optional_str(data.get("oldest_non_compliant_since")),
            group_state={str(k): int(v) for k, v in dict(data.get("group_state", {})).items()},
            previous_snapshot_id=_optional_str(data.get("previous_snapshot_id")),
            previous_compliance_percent=decimal_or_none("previous_compliance_percent"),
            managed=bool(data.get("managed", False)),
            baselines=tuple(str(b) for b in data.get("baselines", [])),
            source=str(data.get("source", "scheduled")),
            taken_at=str(data.get("taken_at", "")),
        )


@dataclass(frozen=True)
class GroupSnapshot:
    totals: GroupTotals
    rows: list[InstanceRow]


def sla_breached(since: str | None, snapshot_time: datetime, days: int = SLA_DAYS) -> bool:
    return since is not None and snapshot_time.astimezone(UTC) - parse_iso(since) > timedelta(days=days)


def build_snapshot(
    group: str,
    snapshot_time: datetime,
    *,
    group_state: Mapping[str, Any],
    states: Iterable[Mapping[str, Any]],
    previous_rows: Mapping[str, Since] | None = None,
    previous_totals: GroupTotals | None = None,
    managed: bool = False,
    baselines: Sequence[str] = (),
    source: str = "scheduled",
    taken_at: str = "",
) -> GroupSnapshot:
    """The snapshot of one group at ``snapshot_time``: a row per instance and the group's totals,
    since-dates carried over from ``previous_rows`` (instance id -> its previous row's dates)."""
    snapshot_id = snapshot_id_for(snapshot_time)
    carried = previous_rows or {}
    rows = [
        instance_row(state, carried.get(str(state["InstanceId"])), snapshot_time)
        for state in _latest_per_instance(states)
    ]
    compliant = sum(1 for row in rows if row.compliant)
    since_dates = [row.non_compliant_since for row in rows if row.non_compliant_since]
    totals = GroupTotals(
        group=group,
        snapshot_id=snapshot_id,
        instances=len(rows),
        compliant_instances=compliant,
        compliance_percent=compliance_percent(compliant, len(rows)),
        pending_reboot_instances=sum(1 for row in rows if row.count("installed_pending_reboot") > 0),
        critical_instances=sum(1 for row in rows if row.count("critical_non_compliant") > 0),
        critical_sla_breaches=sum(
            1 for row in rows if sla_breached(row.critical_missing_since, snapshot_time)
        ),
        patches={name: sum(row.count(count) for row in rows) for name, count in PATCH_SUMS.items()},
        oldest_non_compliant_since=min(since_dates) if since_dates else None,
        group_state={
            str(name): int(value)
            for name, value in group_state.items()
            if name != "ResponseMetadata" and isinstance(value, int) and not isinstance(value, bool)
        },
        previous_snapshot_id=previous_totals.snapshot_id if previous_totals else None,
        previous_compliance_percent=previous_totals.compliance_percent if previous_totals else None,
        managed=managed,
        baselines=tuple(sorted(set(baselines))),
        source=source,
        taken_at=taken_at,
    )
    return GroupSnapshot(totals=totals, rows=rows)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
#: Per-group metric names (dimension PatchGroup=<the group's slug>, see :func:`metric_dimension_value`);
#: dashboards are built on these names.
METRIC_COMPLIANCE_PERCENT = "CompliancePercent"
METRIC_NON_COMPLIANT_INSTANCES = "NonCompliantInstances"
METRIC_MISSING_PATCHES = "MissingPatches"
METRIC_FAILED_PATCHES = "FailedPatches"
METRIC_DIMENSION = "PatchGroup"
#: Run-level (dimension service only): the lowest CompliancePercent among the groups a run
#: recorded; the stack's ComplianceBelowThresholdAlarm watches it.
METRIC_LOWEST_COMPLIANCE_PERCENT = "LowestCompliancePercent"


def metric_dimension_value(group: str) -> str:
    """The ``PatchGroup`` dimension value of ``group``: its slug (:func:`tagpatch.naming.group_slug`).

    CloudWatch dimension values "must contain only ASCII characters and must include at least one
    non-whitespace character. ASCII control characters are not supported"
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html), while a
    tag value may be any Unicode, or only spaces. The slug is ``[A-Za-z0-9_.-]``, 1-75 characters,
    and *is* the tag value for every SSM-safe name (``web`` stays ``web``), so dashboards and
    searches on existing groups keep their series; the name itself goes into the metric log line
    as metadata.
    """
    return group_slug(group)


def metric_values(totals: GroupTotals) -> list[tuple[str, str, float]]:
    """(name, unit, value) of a group's metrics; no CompliancePercent for a group without instances."""
    values: list[tuple[str, str, float]] = []
    if totals.compliance_percent is not None:
        values.append((METRIC_COMPLIANCE_PERCENT, "Percent", float(totals.compliance_percent)))
    values += [
        (METRIC_NON_COMPLIANT_INSTANCES, "Count", float(totals.non_compliant_instances)),
        (METRIC_MISSING_PATCHES, "Count", float(totals.patch_count("missing_patches"))),
        (METRIC_FAILED_PATCHES, "Count", float(totals.patch_count("failed_patches"))),
    ]
    return values


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupOutcome:
    group: str
    status: str  # recorded | already-recorded | failed | missing (a fanned-out run's deadline passed)
    totals: GroupTotals | None = None
    error: str | None = None


@dataclass(frozen=True)
class Digest:
    subject: str
    body: str


def worst_instances(
    rows: Iterable[tuple[str, InstanceRow]], limit: int = WORST_INSTANCES
) -> list[tuple[str, InstanceRow]]:
    """The ``limit`` worst non-compliant (group, row) pairs: most critical + security patches
    first, then the longest non-compliant, then the most missing + failed patches."""
    candidates = [(group, row) for group, row in rows if not row.compliant]
    candidates.sort(
        key=lambda pair: (
            -pair[1].severe_patches,
            pair[1].non_compliant_since or "9999",
            -(pair[1].count("missing") + pair[1].count("failed")),
            pair[0],
            pair[1].instance_id,
        )
    )
    return candidates[:limit]


def _percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def _change(totals: GroupTotals) -> str:
    change = totals.compliance_change
    if change is not None:
        return f"{change:+.2f} pp"
    if totals.previous_snapshot_id is None and totals.compliance_percent is not None:
        return "new"
    return "n/a"


def _days_since(since: str | None, snapshot_time: datetime) -> str:
    if since is None:
        return ""
    days = (snapshot_time.astimezone(UTC) - parse_iso(since)).days
    return f"; non-compliant for {days} day{'s' if days != 1 else ''} (since {since[:10]})"


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def render_digest(
    snapshot_id: str,
    snapshot_time: datetime,
    source: str,
    outcomes: Sequence[GroupOutcome],
    worst: Sequence[tuple[str, InstanceRow]],
    *,
    tag_key: str = "PatchGroup",
) -> Digest:
    """One plain-text message for the run: every group, the failed ones, the worst instances."""
    reported = [o for o in outcomes if o.totals is not None]
    failed = [o for o in outcomes if o.status == "failed"]
    missing = [o for o in outcomes if o.status == "missing"]
    instances = sum(o.totals.instances for o in reported if o.totals)
    compliant = sum(o.totals.compliant_instances for o in reported if o.totals)
    overall = compliance_percent(compliant, instances)
    breaches = sum(o.totals.critical_sla_breaches for o in reported if o.totals)

    subject = (
        f"TagPatch compliance {snapshot_id[:10]}: {_percent(overall)}, {instances - compliant} non-compliant"
    )
    if failed:
        subject += f", {len(failed)} group{'s' if len(failed) != 1 else ''} failed"
    if missing:
        subject += f", {len(missing)} group{'s' if len(missing) != 1 else ''} missing"
    subject = _ascii(subject)[:SUBJECT_MAX_LENGTH]

    lines = [
        f"TagPatch compliance snapshot {snapshot_id} ({source})",
        "",
        f"Overall: {_percent(overall)} compliant ({compliant} of {instances} instances) "
        f"in {len(reported)} group{'s' if len(reported) != 1 else ''}"
        + (f"; {len(failed)} group{'s' if len(failed) != 1 else ''} failed" if failed else "")
        + (f"; {len(missing)} group{'s' if len(missing) != 1 else ''} missing" if missing else "")
        + ".",
        f"Critical patches missing for more than {SLA_DAYS} days: {breaches} instance"
        f"{'s' if breaches != 1 else ''}.",
        "Compliant = no missing, failed, rejected-installed or pending-reboot patches.",
        "",
    ]
    ordered = sorted(
        reported,
        key=lambda o: (
            o.totals.compliance_percent is None if o.totals else True,
            o.totals.compliance_percent if o.totals and o.totals.compliance_percent is not None else 0,
            o.group,
        ),
    )
    # Group names are tag values: quoted and escaped when not plain (tagpatch.models.display), as
    # are error texts, so no name or error can add a line to the digest or hide a character.
    width = min(max([len(quoted(o.group)) for o in reported] + [5]), 40)
    lines.append(f"Groups ({tag_key} tag value), lowest compliance first:")
    lines.append(
        f"  {'group':<{width}} {'instances':>9} {'compliant':>10} {'change':>10} "
        f"{'non-compl.':>10} {'missing':>8} {'failed':>7} {'crit>' + str(SLA_DAYS) + 'd':>7}"
    )
    for outcome in ordered:
        totals = outcome.totals
        if totals is None:  # pragma: no cover - ``ordered`` holds reported groups only
            continue
        lines.append(
            f"  {_short(quoted(outcome.group), width):<{width}} {totals.instances:>9} "
            f"{_percent(totals.compliance_percent):>10} {_change(totals):>10} "
            f"{totals.non_compliant_instances:>10} {totals.patch_count('missing_patches'):>8} "
            f"{totals.patch_count('failed_patches'):>7} {totals.critical_sla_breaches:>7}"
        )
    if not reported:
        lines.append("  (no group recorded)")
    if failed:
        lines += ["", "Failed groups (not recorded in this snapshot):"]
        lines += [f"  {quoted(o.group)}: {one_line(o.error or '')}" for o in failed]
    if missing:
        lines += ["", "Missing groups (not recorded by the run's deadline):"]
        lines += [f"  {quoted(o.group)}: {one_line(o.error or '')}" for o in missing]
    non_compliant = instances - compliant
    lines += ["", f"Worst instances ({len(worst)} of {non_compliant} non-compliant):"]
    for group, row in worst:
        reboot = ", pending reboot" if row.count("installed_pending_reboot") else ""
        lines.append(
            f"  {one_line(row.instance_id)} ({quoted(group)}): "
            f"{row.count('critical_non_compliant')} critical, "
            f"{row.count('security_non_compliant')} security, {row.count('missing')} missing, "
            f"{row.count('failed')} failed{reboot}{_days_since(row.non_compliant_since, snapshot_time)}"
        )
    if not worst:
        lines.append("  (every instance is compliant)")
    body = "\n".join(lines) + "\n"
    if len(body.encode("utf-8")) > BODY_MAX_BYTES:
        body = body.encode("utf-8")[: BODY_MAX_BYTES - 40].decode("utf-8", "ignore") + "\n[... truncated]\n"
    return Digest(subject=subject, body=body)
