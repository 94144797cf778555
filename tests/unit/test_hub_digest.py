"""The organization digest from state items (no AWS): ordering, limits, the first digest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tagpatch.hub.digest import (
    LIST_LIMIT,
    SUBJECT_LIMIT,
    WORST_GROUPS,
    compute,
    read_items,
    remembered,
    render,
)

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def _group(account: str, group: str, instances: int, compliant: int) -> dict[str, Any]:
    return {
        "pk": f"{account}#eu-west-1",
        "sk": f"group#{group}",
        "compliance": {
            "order": "2026-12-02T06:00:00Z#e",
            "at": "2026-12-02T06:00:00Z",
            "snapshotId": "s",
            "instances": instances,
            "compliant": compliant,
            "nonCompliant": instances - compliant,
            "percent": 100 * compliant / instances if instances else None,
        },
        **({"nonCompliantSince": "2026-11-30T06:00:00Z"} if compliant < instances else {}),
    }


def _member(account: str, last: str, version: str = "0.1.0") -> dict[str, Any]:
    return {"pk": f"{account}#eu-west-1", "sk": "#member", "lastEventAt": last, "version": version}


def test_worst_groups_are_the_lowest_percent_then_the_most_non_compliant_top_twenty() -> None:
    items = [_group("111111111111", f"g{n:02d}", 10 + n, 5) for n in range(30)]
    items += [_group("111111111111", "tie-small", 10, 1), _group("111111111111", "tie-big", 20, 2)]
    items.append(_group("111111111111", "clean", 10, 10))
    items.append({"pk": "111111111111#eu-west-1", "sk": "group#no-snapshot", "run": {"at": "x"}})

    figures = compute(read_items(items), NOW, threshold=90, silent_after_hours=24)

    names = [group.group for group in figures.worst]
    assert len(names) == WORST_GROUPS
    # 10%: the one with more non-compliant instances first; then 5 of 39, of 38 compliant
    assert names[:4] == ["tie-big", "tie-small", "g29", "g28"]
    assert "clean" not in names
    assert (figures.groups, figures.below_threshold) == (34, 32)
    assert remembered(figures)["groups"]["111111111111#eu-west-1#no-snapshot"] == 2


def test_an_empty_organization_has_no_percent_and_says_so() -> None:
    figures = compute(read_items([]), NOW, threshold=90, silent_after_hours=24)

    subject, body = render(figures)

    assert figures.percent is None
    assert [name for name, _, _ in figures.metrics()] == [
        "SilentMembers",
        "GroupsBelowThreshold",
        "Members",
        "Groups",
    ]
    assert subject.startswith("TagPatch organization: n/a compliant")
    assert "this is the first digest" in body


def test_long_lists_are_cut_and_counted_and_the_subject_fits_sns() -> None:
    members = [_member(f"{100000000000 + n:012d}", "2026-11-01T00:00:00Z") for n in range(LIST_LIMIT + 7)]
    figures = compute(read_items(members), NOW, threshold=99.5, silent_after_hours=1.5)

    subject, body = render(figures)

    assert len(subject) <= SUBJECT_LIMIT
    assert f"Silent members (no event for more than 1.5 hours): {LIST_LIMIT + 7}" in body
    assert "  ... and 7 more" in body
    assert "  0.1.0: 57" in body


def test_a_member_with_no_event_time_is_silent_and_one_seen_recently_is_not() -> None:
    items = [_member("111111111111", ""), _member("222222222222", "2026-12-02T06:59:00Z", version="")]

    figures = compute(read_items(items), NOW, threshold=90, silent_after_hours=24)

    assert [member.account for member in figures.silent] == ["111111111111"]
    assert figures.versions == {"0.1.0": 1, "unknown": 1}


def test_chunks_of_another_generation_are_not_the_last_digest() -> None:
    pointer = {"pk": "#hub", "sk": "digest#last", "generation": "b", "chunks": 1}
    stale = {"pk": "#hub", "sk": "digest#state#a#00000", "data": '{"percent": 1}'}

    view = read_items([pointer, stale])

    assert view.previous is None
    assert view.pointer == {"generation": "b", "chunks": 1}
