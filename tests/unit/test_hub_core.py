"""The hub's intake and its rule for a group's run of non-compliant snapshots (no AWS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.hub.config import load_hub_digest_config, load_hub_store_config
from tagpatch.hub.core import COMPLIANCE, HEARTBEAT, RECONCILE, UNSUPPORTED, Rejected, parse_event
from tagpatch.hub.records import RUN, order_of
from tagpatch.hub.state import ComplianceState, apply_snapshot, merge_late_snapshot
from tagpatch.models.environment import ConfigError
from tests.conftest import EVENTS_DIR


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


# --- intake ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("member-compliance-snapshot.json", COMPLIANCE),
        ("member-run-result.json", RUN),
        ("member-group-reconciled.json", RECONCILE),
        ("member-group-refused.json", RECONCILE),
        ("member-heartbeat.json", HEARTBEAT),
    ],
)
def test_every_sample_member_event_is_a_fact_of_its_kind(name: str, kind: str) -> None:
    event = _sample(name)

    fact = parse_event(json.dumps(event))

    assert fact.kind == kind
    assert (fact.account, fact.region, fact.time) == (event["account"], event["region"], event["time"])
    assert (fact.version, fact.schema_version, fact.stack) == ("0.1.0", "1", "tagpatch")
    assert fact.order == order_of(event["time"], event["id"])
    assert fact.group == event["detail"].get("group", "")


def test_the_time_is_normalised_to_utc_seconds() -> None:
    event = {**_sample("member-run-result.json"), "time": "2026-12-02T04:04:05+01:00"}
    assert parse_event(json.dumps(event)).time == "2026-12-02T03:04:05Z"


def test_unknown_fields_are_ignored_and_a_missing_schema_version_reads_as_1() -> None:
    event = _sample("member-run-result.json")
    detail = {k: v for k, v in event["detail"].items() if k not in ("schemaVersion", "tagpatchVersion")}
    event["detail"] = {**detail, "addedLater": [1, 2]}

    fact = parse_event(json.dumps(event))

    assert fact.kind == RUN
    assert (fact.schema_version, fact.version) == ("", "")


@pytest.mark.parametrize(
    "change",
    [
        {"detail-type": "Window Moved"},
        {"detail": {"schemaVersion": "2", "account": "123456789012", "tagpatchVersion": "9.0.0"}},
    ],
)
def test_an_unknown_type_or_schema_is_unsupported_but_names_the_member(change: dict[str, Any]) -> None:
    event = {**_sample("member-run-result.json"), **change}

    fact = parse_event(json.dumps(event))

    assert fact.kind == UNSUPPORTED
    assert fact.detail is None
    assert fact.account == "123456789012"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": "evil"}, "source"),
        ({"id": ""}, "id"),
        ({"account": "12345"}, "account"),
        ({"time": 5}, "time"),
        ({"time": "2026-12-02T03:04:05"}, "time zone"),
        ({"detail": []}, "detail"),
    ],
)
def test_a_malformed_envelope_is_rejected_with_its_reason(change: dict[str, Any], reason: str) -> None:
    event = {**_sample("member-run-result.json"), **change}
    with pytest.raises(Rejected, match=reason):
        parse_event(json.dumps(event))


@pytest.mark.parametrize("key", ["account", "region"])
def test_a_detail_naming_another_sender_is_rejected_even_of_an_unknown_schema(key: str) -> None:
    event = _sample("member-run-result.json")
    event["detail"] = {**event["detail"], "schemaVersion": "7", key: "999999999999"}
    with pytest.raises(Rejected, match=f"detail.{key}"):
        parse_event(json.dumps(event))


def test_a_version_1_detail_with_wrong_figures_is_rejected() -> None:
    event = _sample("member-compliance-snapshot.json")
    event["detail"]["instances"] = -1
    with pytest.raises(Rejected, match="instances"):
        parse_event(json.dumps(event))


# --- the run of non-compliant snapshots ----------------------------------------------------------
def _reference(snapshots: list[tuple[str, bool]]) -> ComplianceState:
    """The state from every snapshot at once: the newest's order, the non-compliant ones after the
    newest compliant one."""
    if not snapshots:
        return ComplianceState()
    newest = max(order for order, _ in snapshots)
    compliant = max((order for order, nc in snapshots if not nc), default="")
    run = tuple(sorted({order for order, nc in snapshots if nc and order > compliant}))
    return ComplianceState(newest, run, compliant)


SNAPSHOTS = st.lists(
    st.tuples(
        st.integers(0, 40).map(lambda n: order_of(f"2026-12-{1 + n // 24:02d}T{n % 24:02d}:00:00Z", "e")),
        st.booleans(),
    ),
    max_size=12,
    unique_by=lambda snapshot: snapshot[0],
)


@given(snapshots=SNAPSHOTS, data=st.data())
def test_any_arrival_order_with_duplicates_makes_the_state_of_all_of_them_at_once(
    snapshots: list[tuple[str, bool]], data: st.DataObject
) -> None:
    arrivals = data.draw(
        st.permutations(
            snapshots + data.draw(st.lists(st.sampled_from(snapshots or [("", False)]), max_size=4))
        )
    )
    state = ComplianceState()
    for order, non_compliant in arrivals:
        if order:
            state = apply_snapshot(state, order, non_compliant=non_compliant)

    assert state == _reference(snapshots)
    expected_since = _reference(snapshots).nc_run[0][:20] if _reference(snapshots).nc_run else ""
    assert state.since == expected_since


def test_a_late_compliant_snapshot_moves_the_start_of_the_run_after_it() -> None:
    state = ComplianceState("t4#e", ("t1#e", "t3#e", "t4#e"), "")

    late = merge_late_snapshot(state, "t2#e", non_compliant=False)

    assert late == ComplianceState("t4#e", ("t3#e", "t4#e"), "t2#e")
    assert late.since == "t3"


def test_a_late_snapshot_before_the_newest_compliant_one_changes_nothing() -> None:
    state = ComplianceState("t4#e", ("t4#e",), "t3#e")
    assert merge_late_snapshot(state, "t2#e", non_compliant=True) is None
    assert merge_late_snapshot(state, "t4#e", non_compliant=True) is None  # a duplicate


# --- configuration -----------------------------------------------------------------------------
def test_the_store_configuration_reads_the_fixed_variables() -> None:
    config = load_hub_store_config(
        {
            "TAGPATCH_HUB_STATE_TABLE": "state",
            "TAGPATCH_HUB_HISTORY_TABLE": "history",
            "TAGPATCH_HUB_HISTORY_DAYS": "30",
            "TAGPATCH_HUB_RESOLVE_OUS": "true",
        }
    )
    assert (config.state_table_name, config.history_table_name, config.history_days) == (
        "state",
        "history",
        30,
    )
    assert config.resolve_ous is True


def test_the_digest_configuration_has_the_specs_defaults_and_refuses_bad_values() -> None:
    config = load_hub_digest_config({"TAGPATCH_HUB_STATE_TABLE": "state"})
    assert (config.compliance_threshold, config.silent_after_hours, config.topic_arn) == (90, 24, None)
    with pytest.raises(ConfigError, match="TAGPATCH_HUB_COMPLIANCE_THRESHOLD"):
        load_hub_digest_config(
            {"TAGPATCH_HUB_STATE_TABLE": "state", "TAGPATCH_HUB_COMPLIANCE_THRESHOLD": "101"}
        )
    with pytest.raises(ConfigError, match="TAGPATCH_HUB_HISTORY_TABLE is not set"):
        load_hub_store_config({"TAGPATCH_HUB_STATE_TABLE": "state"})
