"""GroupNames: the tag value behind a group slug, read from GroupsTable for alerts."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from emulator.scenarios.aws import CallLog
from tagpatch.adapters.group_names import GroupNames
from tagpatch.naming import group_slug

TABLE = "tagpatch-groups"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ddb(aws: None) -> Iterator[object]:
    client = boto3.client("dynamodb")
    client.create_table(  # as template.yaml declares GroupsTable
        TableName=TABLE,
        KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client


def _put(ddb: object, group: str) -> str:
    slug = group_slug(group)
    ddb.put_item(  # type: ignore[attr-defined]
        TableName=TABLE, Item={"group": {"S": group}, "slug": {"S": slug}, "status": {"S": "converged"}}
    )
    return slug


def test_a_slug_is_named_by_its_tag_value_with_one_scan(ddb: object) -> None:
    # Given two groups, one whose tag value is not SSM-safe
    batch, web = _put(ddb, "Batch Jobs"), _put(ddb, "web")
    log = CallLog()
    names = GroupNames(TABLE, log.attach(ddb), clock=Clock())

    # When alerts ask for both, several times
    answers = [names.name_of(batch), names.name_of(web), names.name_of(batch)]

    # Then the tag values come back, from one Scan
    assert batch != "Batch Jobs"
    assert answers == ["Batch Jobs", "web", "Batch Jobs"]
    assert log.ops("dynamodb") == {"Scan": 1}


def test_a_group_made_since_the_last_read_is_found_after_the_retry_wait(ddb: object) -> None:
    clock = Clock()
    log = CallLog()
    names = GroupNames(TABLE, log.attach(ddb), retry_after=30, max_age=300, clock=clock)
    assert names.name_of(_put(ddb, "web")) == "web"

    # Given a group the reconciler records after the cache was filled
    late = _put(ddb, "Nightly Batch")

    # Then an unknown slug does not scan again within the retry wait...
    clock.now += 10
    assert names.name_of(late) is None
    # ...and does after it
    clock.now += 25
    assert names.name_of(late) == "Nightly Batch"
    assert log.ops("dynamodb")["Scan"] == 2


def test_known_names_are_read_again_when_the_cache_is_old(ddb: object) -> None:
    clock = Clock()
    log = CallLog()
    names = GroupNames(TABLE, log.attach(ddb), max_age=300, clock=clock)
    slug = _put(ddb, "web")
    names.name_of(slug)
    clock.now += 299
    names.name_of(slug)
    assert log.ops("dynamodb")["Scan"] == 1
    clock.now += 2
    names.name_of(slug)
    assert log.ops("dynamodb")["Scan"] == 2


def test_an_unreadable_table_answers_none_and_logs(ddb: object, caplog: pytest.LogCaptureFixture) -> None:
    # Given a table name that does not exist (or a role without dynamodb:Scan)
    clock = Clock()
    log = CallLog()
    names = GroupNames("no-such-table", log.attach(ddb), clock=clock)

    # Then the alert gets no name, a warning says why, and the next lookup waits before retrying
    assert names.name_of("web") is None
    assert "group names unreadable" in caplog.text
    assert names.name_of("web") is None
    assert log.ops("dynamodb") == {"Scan": 1}


def test_the_reconcilers_own_items_name_no_group(ddb: object) -> None:
    # Given a group, and the reconciler's placement and claims items in the same table
    web = _put(ddb, "web")
    ddb.put_item(  # type: ignore[attr-defined]
        TableName=TABLE,
        Item={
            "group": {"S": "#tagpatch:placement"},
            "p:install:web": {"S": "0887e6f192:0"},
            "c:0887e6f192:0": {"N": "1"},
            "windows": {"N": "1"},
        },
    )
    ddb.put_item(  # type: ignore[attr-defined]
        TableName=TABLE, Item={"group": {"S": "#tagpatch:claims"}, "slug:web": {"S": "web"}}
    )
    names = GroupNames(TABLE, ddb, clock=Clock())

    # Then the group is named, and neither item is taken for a group
    assert names.name_of(web) == "web"
    assert names.name_of("#tagpatch:placement") is None
    assert names.name_of("#tagpatch:claims") is None
