"""adapters/hub_reads.py against moto: pages, exact call counts, projections, day partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from benchmarks.org_report import (
    batch_write,
    create_hub_stack,
    group_item,
    member_item,
    run_facet,
    run_item,
    snapshot_item,
)
from tagpatch.adapters.hub_reads import HubReads, days, iso
from tagpatch.hub.records import RUN, SNAPSHOT, GroupState, MemberState


@pytest.fixture
def tables() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb")
        state, history = create_hub_stack(session.client("cloudformation"))
        yield dynamodb, state, history


def _sent(dynamodb: Any) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb", lambda params, **_: requests.append(params)
    )
    return requests


def test_state_is_one_scan_paged_through_and_splits_members_groups_and_skips_the_hubs_items(
    tables: tuple[Any, str, str],
) -> None:
    # Given 3 members, 7 groups and 3 of the hub's own items
    dynamodb, state, history = tables
    items = [
        member_item(f"11111111111{n}", "eu-west-1", last_event_at="2026-12-01T00:00:00Z") for n in range(3)
    ]
    items += [
        group_item(
            "111111111110",
            "eu-west-1",
            f"g{n}",
            at="2026-12-01T06:00:00Z",
            instances=4,
            compliant=n % 5,
            run=run_facet("2026-12-01T03:00:00Z", f"c{n}", "Success", 0, {"Success": 4}),
        )
        for n in range(7)
    ]
    items += [{"pk": {"S": "#hub"}, "sk": {"S": f"digest#{n}"}, "body": {"S": "big"}} for n in range(3)]
    batch_write(dynamodb, state, items)
    reads = HubReads(state, history, dynamodb, page_size=4)
    sent = _sent(dynamodb)

    # When the state is read in pages of 4
    found = reads.state()

    # Then 13 items took 4 Scans
    assert reads.calls == {"Scan": 4}
    assert len(sent) == 4 and all(request["Limit"] == 4 for request in sent)
    assert sent[1]["ExclusiveStartKey"]
    assert all(isinstance(m, MemberState) for m in found.members) and len(found.members) == 3
    assert all(isinstance(g, GroupState) for g in found.groups) and len(found.groups) == 7
    g3 = next(g for g in found.groups if g.group == "g3")
    assert (g3.compliance.instances, g3.compliance.compliant) == (4, 3)  # type: ignore[union-attr]
    assert g3.run is not None and g3.run.instances == {"Success": 4}
    assert g3.reconcile is None  # not projected: the CLI does not show it


def test_state_projects_only_what_the_cli_shows(tables: tuple[Any, str, str]) -> None:
    dynamodb, state, history = tables
    sent = _sent(dynamodb)
    HubReads(state, history, dynamodb).state()
    (request,) = sent
    projected = set(request["ExpressionAttributeNames"].values())
    assert {"pk", "sk", "ouId", "ouName", "compliance", "run", "lastEventAt"} <= projected
    assert "reconcile" not in projected and "body" not in projected
    assert request["ProjectionExpression"].count("#a") == len(projected)


def test_history_is_one_query_per_day_from_the_first_days_lower_bound(tables: tuple[Any, str, str]) -> None:
    # Given snapshots at 05:00 on 11-29 .. 12-02 and one run
    dynamodb, state, history = tables
    items = [
        snapshot_item(f"2026-{day}T05:00:00Z", "111111111111", "eu-west-1", "web", instances=4, compliant=n)
        for n, day in enumerate(("11-29", "11-30", "12-01", "12-02"))
    ]
    items.append(
        run_item(
            "2026-12-01T03:00:00Z",
            "111111111111",
            "eu-west-1",
            "web",
            command_id="c-1",
            status="Failed",
            failed=1,
            instances=4,
        )
    )
    batch_write(dynamodb, history, items)
    reads = HubReads(state, history, dynamodb)
    sent = _sent(dynamodb)

    # When the snapshots since 11-30 06:00 are read, then the runs of 12-01
    since = datetime(2026, 11, 30, 6, tzinfo=UTC)
    read = list(reads.history(SNAPSHOT, since, datetime(2026, 12, 2, 12, tzinfo=UTC)))
    runs = reads.history_day(RUN, date(2026, 12, 1))

    # Then 3 Queries (11-30 .. 12-02), the first bounded by the time: 11-30's 05:00 is not read
    assert [day.isoformat() for day, _ in read] == ["2026-11-30", "2026-12-01", "2026-12-02"]
    assert [[row.compliant for row in rows] for _, rows in read] == [[], [2], [3]]
    assert reads.calls == {"Query": 4}
    assert sent[0]["ExpressionAttributeValues"][":since"] == {"S": "2026-11-30T06:00:00Z"}
    assert all(":since" not in request["ExpressionAttributeValues"] for request in sent[1:])
    assert set(sent[1]["ExpressionAttributeNames"].values()) == {
        "pk",
        "sk",
        "instances",
        "compliant",
        "percent",
    }
    row = read[1][1][0]
    assert (row.kind, row.account, row.region, row.group, row.fact_id) == (
        "snapshot",
        "111111111111",
        "eu-west-1",
        "web",
        "2026-12-01T05:00:00Z",
    )
    (run,) = runs
    assert (run.kind, run.fact_id, run.status, run.failed, run.instances) == ("run", "c-1", "Failed", 1, 4)


def test_a_day_over_one_page_is_paged_through(tables: tuple[Any, str, str]) -> None:
    dynamodb, state, history = tables
    items = [
        snapshot_item(
            "2026-12-01T05:00:00Z", f"1111111111{n:02d}", "eu-west-1", "web", instances=1, compliant=1
        )
        for n in range(11)
    ]
    batch_write(dynamodb, history, items)
    reads = HubReads(state, history, dynamodb, page_size=5)
    assert len(reads.history_day(SNAPSHOT, date(2026, 12, 1))) == 11
    assert reads.calls == {"Query": 3}


def test_days_and_iso() -> None:
    assert days(datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2026, 12, 1, 1, tzinfo=UTC)) == [
        date(2026, 11, 30),
        date(2026, 12, 1),
    ]
    assert days(datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)) == []
    assert iso(datetime(2026, 12, 1, 5, 6, 7, 999, tzinfo=UTC)) == "2026-12-01T05:06:07Z"
