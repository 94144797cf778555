"""The hub's OU lookup: ListParents then DescribeOrganizationalUnit, the root, refusals and failures
(botocore's Stubber checks every request against the service model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tagpatch.adapters.hub_organizations import ROOT_NAME, OrganizationGateway
from tagpatch.hub.config import load_hub_store_config
from tagpatch.hub.core import HubRecorder, parse_event
from tagpatch.hub.ports import OrganizationDenied
from tagpatch.hub.state import MemberView
from tests.conftest import EVENTS_DIR

ACCOUNT = "123456789012"


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("organizations", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_an_account_in_an_ou_is_named_by_it(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_parents",
        {"Parents": [{"Id": "ou-ab12-cdefgh34", "Type": "ORGANIZATIONAL_UNIT"}]},
        {"ChildId": ACCOUNT},
    )
    stubber.add_response(
        "describe_organizational_unit",
        {"OrganizationalUnit": {"Id": "ou-ab12-cdefgh34", "Name": "Workloads"}},
        {"OrganizationalUnitId": "ou-ab12-cdefgh34"},
    )

    assert OrganizationGateway(client).parent_ou(ACCOUNT) == ("ou-ab12-cdefgh34", "Workloads")


def test_an_account_under_the_root_is_named_root_in_one_call(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_parents", {"Parents": [{"Id": "r-ab12", "Type": "ROOT"}]}, {"ChildId": ACCOUNT}
    )

    assert OrganizationGateway(client).parent_ou(ACCOUNT) == ("r-ab12", ROOT_NAME)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", OrganizationDenied),
        ("AWSOrganizationsNotInUseException", OrganizationDenied),
        ("TooManyRequestsException", Exception),
    ],
)
def test_refusals_are_denied_and_other_errors_raise(
    stubbed: Any, code: str, expected: type[Exception]
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("list_parents", service_error_code=code, expected_params={"ChildId": ACCOUNT})

    with pytest.raises(expected):
        OrganizationGateway(client).parent_ou(ACCOUNT)


def test_an_account_that_left_has_no_ou(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_client_error("list_parents", service_error_code="ChildNotFoundException")
    stubber.add_response("list_parents", {"Parents": []}, {"ChildId": ACCOUNT})

    assert OrganizationGateway(client).parent_ou(ACCOUNT) == ("", "")
    assert OrganizationGateway(client).parent_ou(ACCOUNT) == ("", "")


class _Store:
    """Just enough of the hub store: the member exists, its OU never checked."""

    def __init__(self) -> None:
        self.ous: list[tuple[str, str]] = []

    def update_member(self, update: Any) -> tuple[bool, MemberView]:
        return True, MemberView(last_order=update.order, first_seen=update.first_seen)

    def set_ou(self, account: str, region: str, ou_id: str, ou_name: str, checked_at: str) -> None:
        self.ous.append((ou_id, ou_name))

    def put_facet(self, *args: Any) -> str:
        return ""


class _Flaky:
    def __init__(self) -> None:
        self.calls = 0

    def parent_ou(self, account: str) -> tuple[str, str]:
        self.calls += 1
        raise RuntimeError("throttled")


def test_a_failed_lookup_is_not_tried_again_within_the_hour_and_never_fails_the_event() -> None:
    now = [datetime(2026, 12, 2, tzinfo=UTC)]
    config = load_hub_store_config(
        {
            "TAGPATCH_HUB_STATE_TABLE": "state",
            "TAGPATCH_HUB_HISTORY_TABLE": "history",
            "TAGPATCH_HUB_RESOLVE_OUS": "true",
        }
    )
    organization = _Flaky()
    store = _Store()
    recorder = HubRecorder(config, store, organization, clock=lambda: now[0])  # type: ignore[arg-type]
    fact = parse_event((EVENTS_DIR / "member-group-reconciled.json").read_text())

    recorder.store(fact)
    recorder.store(fact)
    now[0] += timedelta(minutes=61)
    recorder.store(fact)

    assert organization.calls == 2
    assert store.ous == []
