"""The hub's store function on moto: member events from HubQueue into the state and history tables
(tagpatch.hub.records), idempotent whatever the arrival order, with the DynamoDB calls counted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from benchmarks.hub_store import HISTORY_TABLE, HUB_ENV, STATE_TABLE, create_hub_tables, envelope, sqs_event
from emulator.scenarios.aws import CallLog
from tagpatch.adapters.hub_organizations import OrganizationGateway
from tagpatch.adapters.hub_store import HubStore
from tagpatch.handlers import hub as hub_handler
from tagpatch.hub.config import load_hub_store_config
from tagpatch.hub.core import HubRecorder
from tagpatch.hub.records import GroupState, MemberState, order_of
from tagpatch.hub.state import ComplianceState, apply_snapshot
from tagpatch.observability import metrics
from tests.conftest import EVENTS_DIR

ACCOUNT, REGION = "111111111111", "eu-west-1"
T0 = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
_DESERIALIZER = TypeDeserializer()


@dataclass
class Hub:
    ddb: Any
    log: CallLog

    def recorder(self, **env: str) -> HubRecorder:
        config = load_hub_store_config({**HUB_ENV, **env})
        return HubRecorder(config, HubStore(STATE_TABLE, HISTORY_TABLE, self.ddb), clock=lambda: T0)

    def items(self, table: str) -> list[dict[str, Any]]:
        items = boto3.client("dynamodb").scan(TableName=table)["Items"]
        plain = [{k: _DESERIALIZER.deserialize(v) for k, v in item.items()} for item in items]
        return sorted(plain, key=lambda item: (item["pk"], item["sk"]))

    def item(self, table: str, pk: str, sk: str) -> dict[str, Any]:
        found = [item for item in self.items(table) if (item["pk"], item["sk"]) == (pk, sk)]
        assert len(found) == 1, f"no item {pk} {sk}"
        return found[0]


@pytest.fixture
def hub(aws: None) -> Iterator[Hub]:
    log = CallLog()
    ddb = log.attach(boto3.client("dynamodb"))
    create_hub_tables(ddb)
    log.reset()
    yield Hub(ddb, log)


def _detail(kind: str, group: str = "web", **figures: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schemaVersion": "1",
        "tagpatchVersion": "0.1.0",
        "account": ACCOUNT,
        "region": REGION,
        "stack": "tagpatch",
    }
    if kind == "Member Heartbeat":
        return {**base, "groups": 2, "groupsByStatus": {"converged": 2}, **figures}
    base["group"] = group
    if kind == "Compliance Snapshot":
        non = figures.pop("non_compliant", 0)
        return {
            **base,
            "snapshotId": figures.pop("snapshot", "2026-12-02T00:00:00Z"),
            "instances": 10,
            "compliantInstances": 10 - non,
            "nonCompliantInstances": non,
            "compliancePercent": 100.0 - 10 * non,
            **figures,
        }
    if kind == "Run Result":
        return {
            **base,
            "commandId": figures.pop("command", "c-1"),
            "status": "Success",
            "instances": {"Success": 10},
            "failedInstances": 0,
            **figures,
        }
    if kind == "Group Refused":
        return {**base, "status": "refused", "reasons": ["bad"], **figures}
    return {**base, "status": "converged", "actions": 1, "windows": [], **figures}


def _event(
    kind: str, minute: int, event_id: str = "", *, account: str = ACCOUNT, **figures: Any
) -> dict[str, Any]:
    detail = _detail(kind, **figures)
    detail["account"] = figures.get("account_in_detail", account)
    return envelope(
        kind,
        {k: v for k, v in detail.items() if k != "account_in_detail"},
        account=account,
        region=REGION,
        at=T0 + timedelta(minutes=minute),
        event_id=event_id or f"e-{kind[:3]}-{minute:04d}",
    )


def _metric(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


# --- one event of each kind ---------------------------------------------------------------------
def test_a_snapshot_writes_the_member_the_group_and_one_history_item_in_three_calls(hub: Hub) -> None:
    event = _event("Compliance Snapshot", 5, non_compliant=2)

    answer = hub_handler.handle(sqs_event([event]), hub.recorder())

    assert answer == {"batchItemFailures": []}
    assert hub.log.ops("dynamodb") == {"UpdateItem": 2, "PutItem": 1}
    member = MemberState.from_item(hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member"))
    assert (member.version, member.schema_version, member.stack) == ("0.1.0", "1", "tagpatch")
    assert (member.last_event_at, member.last_event_type) == ("2026-12-02T00:05:00Z", "Compliance Snapshot")
    assert member.first_seen_at == "2026-12-02T00:05:00Z"
    group = GroupState.from_item(hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "group#web"))
    assert group.compliance is not None
    assert (group.compliance.instances, group.compliance.non_compliant, group.compliance.percent) == (
        10,
        2,
        80.0,
    )
    assert group.non_compliant_since == "2026-12-02T00:05:00Z"
    (history,) = hub.items(HISTORY_TABLE)
    assert history["pk"] == "snapshot#2026-12-02"
    assert history["sk"] == f"2026-12-02T00:05:00Z#{ACCOUNT}#{REGION}#web#2026-12-02T00:00:00Z"
    assert history["expiresAt"] == int((T0 + timedelta(minutes=5)).timestamp()) + 400 * 86_400
    assert _metric("HubEventsStored") == [1.0]


@pytest.mark.parametrize(
    ("kind", "calls", "history"),
    [
        ("Run Result", {"UpdateItem": 2, "PutItem": 1}, 1),
        ("Group Reconciled", {"UpdateItem": 2}, 0),
        ("Group Refused", {"UpdateItem": 2}, 0),
        ("Member Heartbeat", {"UpdateItem": 1}, 0),
    ],
)
def test_each_kind_costs_its_calls(hub: Hub, kind: str, calls: dict[str, int], history: int) -> None:
    answer = hub_handler.handle(sqs_event([_event(kind, 1)]), hub.recorder())

    assert answer == {"batchItemFailures": []}
    assert hub.log.ops("dynamodb") == calls
    assert len(hub.items(HISTORY_TABLE)) == history


def test_a_heartbeat_sets_the_members_groups_and_a_refusal_the_groups_reconcile(hub: Hub) -> None:
    hub_handler.handle(
        sqs_event([_event("Member Heartbeat", 1), _event("Group Refused", 2, group="db")]), hub.recorder()
    )

    member = hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member")
    assert (member["groups"], member["groupsByStatus"]) == (2, {"converged": 2})
    assert member["lastEventType"] == "Group Refused"
    group = GroupState.from_item(hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "group#db"))
    assert group.reconcile is not None
    assert (group.reconcile.status, group.reconcile.reasons) == ("refused", ("bad",))


def test_a_members_events_in_one_batch_write_its_member_item_once(hub: Hub) -> None:
    events = [_event("Group Reconciled", minute, group=f"g{minute}") for minute in range(10)]

    hub_handler.handle(sqs_event(events), hub.recorder())

    # one member write (the newest event first), one facet write per group
    assert hub.log.ops("dynamodb") == {"UpdateItem": 1 + 10}
    member = hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member")
    assert (member["lastEventAt"], member["firstSeenAt"]) == ("2026-12-02T00:09:00Z", "2026-12-02T00:00:00Z")


def test_a_batch_delivered_twice_is_counted_as_duplicates_and_changes_nothing(hub: Hub) -> None:
    events = [
        _event("Compliance Snapshot", 1, non_compliant=1),
        _event("Run Result", 2),
        _event("Group Reconciled", 3),
        _event("Member Heartbeat", 4),
    ]
    hub_handler.handle(sqs_event(events), hub.recorder())
    before = (hub.items(STATE_TABLE), hub.items(HISTORY_TABLE))
    metrics.clear_metrics()
    hub.log.reset()

    # another container (nothing remembered) gets the same batch
    answer = hub_handler.handle(sqs_event(events), hub.recorder())

    assert answer == {"batchItemFailures": []}
    assert (hub.items(STATE_TABLE), hub.items(HISTORY_TABLE)) == before
    assert _metric("HubEventsDuplicate") == [4.0]
    assert _metric("HubEventsStored") == [0.0]
    # member: one failed condition; snapshot and run: their facets' and history's failed conditions
    assert hub.log.ops("dynamodb") == {"UpdateItem": 1 + 3, "PutItem": 2}


def test_the_same_container_remembers_and_skips_what_it_stored(hub: Hub) -> None:
    recorder = hub.recorder()
    events = [_event("Group Reconciled", 3), _event("Member Heartbeat", 4)]
    hub_handler.handle(sqs_event(events), recorder)
    hub.log.reset()

    hub_handler.handle(sqs_event(events), recorder)

    assert hub.log.ops("dynamodb") == {}


# --- refused and unsupported --------------------------------------------------------------------
def test_a_detail_naming_another_account_is_a_batch_item_failure_and_stores_nothing(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    forged = _event("Compliance Snapshot", 1, account_in_detail="222222222222")
    good = _event("Group Reconciled", 2)
    batch = sqs_event([forged, good])

    answer = hub_handler.handle(batch, hub.recorder())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert [item["sk"] for item in hub.items(STATE_TABLE)] == ["#member", "group#web"]
    assert hub.items(HISTORY_TABLE) == []
    assert _metric("HubEventsRejected") == [1.0]
    (refusal,) = [r for r in caplog.records if r.getMessage().startswith("member event refused")]
    assert "is not the sender's '111111111111'" in refusal.__dict__["reason"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "aws.ec2", "id": "x"}),
        json.dumps({**_event("Run Result", 1), "time": "yesterday"}),
        json.dumps({**_event("Run Result", 1), "detail": "x"}),
        json.dumps({**_event("Run Result", 1), "account": "me"}),
        json.dumps(_event("Run Result", 1, failedInstances=-1)),
    ],
)
def test_malformed_events_are_refused(hub: Hub, body: str) -> None:
    event = sqs_event([{}])
    event["Records"][0]["body"] = body

    answer = hub_handler.handle(event, hub.recorder())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert hub.items(STATE_TABLE) == []


def test_an_unknown_schema_or_type_refreshes_only_the_member(hub: Hub) -> None:
    future = _event("Compliance Snapshot", 5)
    future["detail"] = {**future["detail"], "schemaVersion": "2", "tagpatchVersion": "3.0.0"}
    new_type = _event("Run Result", 6)
    new_type["detail-type"] = "Window Moved"

    answer = hub_handler.handle(sqs_event([future, new_type]), hub.recorder())

    assert answer == {"batchItemFailures": []}
    (member,) = hub.items(STATE_TABLE)
    assert (member["lastEventType"], member["version"]) == ("Window Moved", "0.1.0")
    assert hub.items(HISTORY_TABLE) == []
    assert _metric("HubEventsUnsupported") == [2.0]


def test_a_member_older_than_schema_version_is_read_as_version_1(hub: Hub) -> None:
    old = _event("Compliance Snapshot", 5)
    old["detail"] = {k: v for k, v in old["detail"].items() if k not in ("schemaVersion", "tagpatchVersion")}

    hub_handler.handle(sqs_event([old]), hub.recorder())

    member = MemberState.from_item(hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member"))
    assert (member.version, member.schema_version) == ("", "")
    assert len(hub.items(HISTORY_TABLE)) == 1
    assert _metric("HubEventsStored") == [1.0]


def test_a_failed_write_fails_its_record_only(hub: Hub) -> None:
    recorder = HubRecorder(load_hub_store_config(HUB_ENV), HubStore(STATE_TABLE, "no-such-table", hub.ddb))

    answer = hub_handler.handle(sqs_event([_event("Run Result", 1), _event("Group Reconciled", 2)]), recorder)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


# --- any order, any duplicates: the same items --------------------------------------------------
FACTS = [
    _event("Compliance Snapshot", 10, non_compliant=2, snapshot="s1"),
    _event("Compliance Snapshot", 20, non_compliant=0, snapshot="s2"),
    _event("Compliance Snapshot", 30, non_compliant=1, snapshot="s3"),
    _event("Compliance Snapshot", 40, non_compliant=3, snapshot="s4"),
    _event("Compliance Snapshot", 50, non_compliant=0, snapshot="s5", group="db"),
    _event("Compliance Snapshot", 60, non_compliant=4, snapshot="s6", group="db"),
    _event("Run Result", 15, command="c-1"),
    _event("Run Result", 35, command="c-2", status="Failed"),
    _event("Group Reconciled", 12),
    _event("Group Refused", 42),
    _event("Member Heartbeat", 5),
    _event("Member Heartbeat", 25, groups=3, groupsByStatus={"converged": 3}),
    # same time, the event id decides
    _event("Group Reconciled", 42, "zzz", status="unchanged"),
]


def _run(deliveries: list[dict[str, Any]], batch: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_hub_tables(ddb)
        hub = Hub(ddb, CallLog())
        containers = [hub.recorder(), hub.recorder()]
        for n, start in enumerate(range(0, len(deliveries), batch)):
            answer = hub_handler.handle(sqs_event(deliveries[start : start + batch]), containers[n % 2])
            assert answer == {"batchItemFailures": []}
        return hub.items(STATE_TABLE), hub.items(HISTORY_TABLE)


@pytest.fixture(scope="module")
def in_order() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return _run(sorted(FACTS, key=lambda e: order_of(e["time"], e["id"])), 1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(FACTS),
    duplicates=st.lists(st.sampled_from(FACTS), max_size=6),
    batch=st.sampled_from([1, 3, 10]),
    data=st.data(),
)
def test_duplicates_and_any_arrival_order_leave_the_same_items(
    in_order: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    order: list[dict[str, Any]],
    duplicates: list[dict[str, Any]],
    batch: int,
    data: st.DataObject,
) -> None:
    deliveries = list(order)
    for duplicate in duplicates:
        deliveries.insert(data.draw(st.integers(0, len(deliveries))), duplicate)

    assert _run(deliveries, batch) == in_order


def test_the_items_in_order_are_the_model_of_the_non_compliant_run(
    in_order: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    state, history = in_order
    web = GroupState.from_item(next(item for item in state if item["sk"] == "group#web"))
    db = GroupState.from_item(next(item for item in state if item["sk"] == "group#db"))
    member = MemberState.from_item(next(item for item in state if item["sk"] == "#member"))

    # web: s2 (compliant) ended the run of s1; s3 and s4 are non-compliant since s3's time
    assert web.non_compliant_since == "2026-12-02T00:30:00Z"
    assert db.non_compliant_since == "2026-12-02T01:00:00Z"
    assert web.compliance is not None and web.compliance.snapshot_id == "s4"
    assert web.run is not None and (web.run.command_id, web.run.status) == ("c-2", "Failed")
    assert (
        web.reconcile is not None and web.reconcile.status == "unchanged"
    )  # same time, id "zzz" > "e-Gro..."
    assert (member.groups, member.last_event_type, member.first_seen_at) == (
        3,
        "Compliance Snapshot",
        "2026-12-02T00:05:00Z",
    )
    assert len(history) == 8
    model = ComplianceState()
    for minute, non in ((10, 2), (20, 0), (30, 1), (40, 3)):
        model = apply_snapshot(model, f"2026-12-02T00:{minute}:00Z#x", non_compliant=non > 0)
    assert model.since == web.non_compliant_since


# --- organizational units -----------------------------------------------------------------------
@pytest.fixture
def organization(hub: Hub) -> tuple[str, str]:
    org = boto3.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]
    account = org.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"][
        "AccountId"
    ]
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    return account, ou


def test_a_members_ou_is_looked_up_once_and_kept_on_its_item(hub: Hub, organization: tuple[str, str]) -> None:
    account, ou = organization
    log = CallLog()
    gateway = OrganizationGateway(log.attach(boto3.client("organizations")))
    config = load_hub_store_config({**HUB_ENV, "TAGPATCH_HUB_RESOLVE_OUS": "true"})
    recorder = HubRecorder(config, HubStore(STATE_TABLE, HISTORY_TABLE, hub.ddb), gateway, clock=lambda: T0)
    events = [
        _event("Group Reconciled", minute, account=account, account_in_detail=account) for minute in (1, 2)
    ]

    hub_handler.handle(sqs_event(events), recorder)
    hub_handler.handle(
        sqs_event([_event("Group Reconciled", 3, account=account, account_in_detail=account)]), recorder
    )

    assert log.ops("organizations") == {"ListParents": 1, "DescribeOrganizationalUnit": 1}
    member = MemberState.from_item(hub.item(STATE_TABLE, f"{account}#{REGION}", "#member"))
    assert (member.ou_id, member.ou_name) == (ou, "Workloads")
    assert hub.item(STATE_TABLE, f"{account}#{REGION}", "#member")["ouCheckedAt"] == "2026-12-02T00:00:00Z"


class DeniedOrganizations:
    calls = 0

    def list_parents(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListParents")


def test_a_denied_ou_lookup_is_logged_once_and_never_fails_an_event(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    denied = DeniedOrganizations()
    config = load_hub_store_config({**HUB_ENV, "TAGPATCH_HUB_RESOLVE_OUS": "true"})
    recorder = HubRecorder(config, HubStore(STATE_TABLE, HISTORY_TABLE, hub.ddb), OrganizationGateway(denied))
    events = [
        _event("Group Reconciled", 1),
        _event("Run Result", 2, account="333333333333", account_in_detail="333333333333"),
    ]

    with caplog.at_level(logging.WARNING):
        answer = hub_handler.handle(sqs_event(events), recorder)

    assert answer == {"batchItemFailures": []}
    assert denied.calls == 1
    assert caplog.text.count("organizations lookups denied") == 1
    assert "ouId" not in hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member")


def test_the_stored_percent_is_a_dynamodb_number(hub: Hub) -> None:
    hub_handler.handle(sqs_event([_event("Compliance Snapshot", 1, non_compliant=3)]), hub.recorder())
    assert hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "group#web")["compliance"]["percent"] == Decimal("70")


def test_a_newest_event_with_an_older_one_in_its_batch_lowers_first_seen_once(hub: Hub) -> None:
    hub_handler.handle(sqs_event([_event("Group Reconciled", 10)]), hub.recorder())
    hub.log.reset()
    metrics.clear_metrics()

    hub_handler.handle(
        sqs_event([_event("Group Reconciled", 5, group="db"), _event("Member Heartbeat", 20)]), hub.recorder()
    )

    member = hub.item(STATE_TABLE, f"{ACCOUNT}#{REGION}", "#member")
    assert (member["firstSeenAt"], member["lastEventType"], member["groups"]) == (
        "2026-12-02T00:05:00Z",
        "Member Heartbeat",
        2,
    )
    # the member's newest event, firstSeenAt lowered once, db's reconcile facet
    assert hub.log.ops("dynamodb") == {"UpdateItem": 3}
    assert _metric("HubEventsStored") == [2.0]


def test_the_lambda_entry_point_stores_the_sample_with_the_deployed_environment(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in HUB_ENV.items():
        monkeypatch.setenv(name, value)
    hub_handler.default_recorder.cache_clear()
    sample = json.loads((EVENTS_DIR / "hub-queue-batch.json").read_text())

    try:
        answer = hub_handler.handler(sample, lambda_context)
    finally:
        hub_handler.default_recorder.cache_clear()

    assert answer == {"batchItemFailures": []}
    group = GroupState.from_item(hub.item(STATE_TABLE, "123456789012#eu-west-1", "group#web-prod"))
    assert group.compliance is not None and group.compliance.non_compliant == 3
    # the metrics: namespace TagPatchHub, no dimension (not even the service)
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == ("TagPatchHub", [[]])
    assert (emf["HubEventsStored"], emf["HubEventsDuplicate"]) == ([1.0], [0.0])
    assert "service" not in emf


def test_not_an_sqs_event_is_refused(hub: Hub) -> None:
    with pytest.raises(hub_handler.InvalidEvent):
        hub_handler.handle({"Records": [{"messageId": 1}]}, hub.recorder())


def test_the_benchmark_measures_the_hub_and_its_floor_in_one_run() -> None:
    from benchmarks.hub_store import measure, render

    figures = measure(200)

    assert figures["failures"] == 0
    assert figures["floor"]["calls_per_event"] == 1.0
    # a member write for its batch's newest event, a facet write, a history put; duplicates cost less
    assert 1.0 < figures["hub"]["calls_per_event"] < 3.0
    assert set(figures["hub"]["calls"]) <= {"UpdateItem", "PutItem"}
    assert "floor: 1 conditional PutItem" in render(figures)


def test_two_containers_at_once_leave_the_same_items(
    in_order: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    # HubConcurrency 2: two containers store interleaved batches of the same (shuffled, repeated)
    # events at the same time; DynamoDB's conditions, not the containers, keep them consistent
    import random
    import threading

    from emulator.scenarios.aws import make_dynamodb_writes_atomic

    make_dynamodb_writes_atomic()
    for seed in range(5):
        deliveries = FACTS * 2
        random.Random(seed).shuffle(deliveries)
        with mock_aws():
            ddb = boto3.client("dynamodb")
            create_hub_tables(ddb)
            hub = Hub(ddb, CallLog())
            answers: list[dict[str, Any]] = []

            def container(
                batches: list[list[dict[str, Any]]], hub: Hub = hub, answers: list[dict[str, Any]] = answers
            ) -> None:
                recorder = hub.recorder()
                for batch in batches:
                    answers.append(hub_handler.handle(sqs_event(batch), recorder))

            batches = [deliveries[i : i + 3] for i in range(0, len(deliveries), 3)]
            threads = [threading.Thread(target=container, args=(batches[n::2],)) for n in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            assert all(answer == {"batchItemFailures": []} for answer in answers)
            assert (hub.items(STATE_TABLE), hub.items(HISTORY_TABLE)) == in_order
