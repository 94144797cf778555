"""The organization's figures and its digest, from one Scan of HubStateTable (pure: no AWS here).

:func:`read_items` sorts the Scan into members, groups and what the last digest remembered (its
chunks, :mod:`tagpatch.adapters.hub_store`); :func:`compute` makes the figures: the organization's
compliance (compliant instances over instances of every group's newest snapshot), the worst groups
(lowest percentage first, then most non-compliant instances), the members silent for more than
``SilentAfterHours``, members by TagPatch version, and what changed since the last digest (groups
newly non-compliant, recovered, new and gone groups and members, the compliance delta);
:func:`render` writes the digest. :func:`remembered` is what the next digest compares with: one
flag per group and the member keys, a few dozen bytes per group (chunked by the store).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from tagpatch.hub.records import (
    DIGEST_LAST_SK,
    DIGEST_STATE_PREFIX,
    HUB_PK,
    GroupState,
    MemberState,
    is_group_item,
    is_member_item,
)

WORST_GROUPS: Final = 20
LIST_LIMIT: Final = 50  # lines per change list in the digest (the rest counted)
SUBJECT_LIMIT: Final = 100  # SNS Subject
# a group's flag in the remembered figures
NON_COMPLIANT: Final = 1
COMPLIANT: Final = 0
NO_SNAPSHOT: Final = 2


@dataclass(frozen=True)
class OrgView:
    members: list[MemberState]
    groups: list[GroupState]
    previous: dict[str, Any] | None  # the last digest's remembered figures
    pointer: dict[str, Any]  # the last digest's chunks ({"generation", "chunks"}), {} without one


def group_key(group: GroupState) -> str:
    return f"{group.account}#{group.region}#{group.group}"


def member_key(member: MemberState) -> str:
    return f"{member.account}#{member.region}"


def read_items(items: Iterable[Mapping[str, Any]]) -> OrgView:
    members, groups, chunks = [], [], {}
    pointer: dict[str, Any] = {}
    for item in items:
        if is_member_item(item):
            members.append(MemberState.from_item(item))
        elif is_group_item(item):
            groups.append(GroupState.from_item(item))
        elif item.get("pk") == HUB_PK and item.get("sk") == DIGEST_LAST_SK:
            pointer = {"generation": str(item.get("generation", "")), "chunks": int(item.get("chunks", 0))}
        elif item.get("pk") == HUB_PK and str(item.get("sk", "")).startswith(DIGEST_STATE_PREFIX):
            chunks[str(item["sk"])] = str(item.get("data", ""))
    previous = None
    if pointer:
        prefix = f"{DIGEST_STATE_PREFIX}{pointer['generation']}#"
        mine = [sk for sk in sorted(chunks) if sk.startswith(prefix)]
        if len(mine) == pointer["chunks"]:
            previous = json.loads("".join(chunks[sk] for sk in mine))
    members.sort(key=member_key)
    groups.sort(key=group_key)
    return OrgView(members, groups, previous, pointer)


@dataclass
class Changes:
    newly_non_compliant: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    new_groups: list[str] = field(default_factory=list)
    gone_groups: list[str] = field(default_factory=list)
    new_members: list[str] = field(default_factory=list)
    gone_members: list[str] = field(default_factory=list)
    percent_delta: float | None = None
    since: str = ""  # the last digest's time


@dataclass
class OrgFigures:
    at: str
    threshold: float
    silent_after_hours: float
    members: int
    groups: int
    instances: int
    compliant: int
    percent: float | None
    below_threshold: int
    worst: list[GroupState]
    silent: list[MemberState]
    versions: dict[str, int]
    flags: dict[str, int]
    member_keys: list[str]
    changes: Changes | None  # None: no digest before this one

    def metrics(self) -> list[tuple[str, str, float]]:
        """(name, unit, value) of the digest function's metrics (namespace TagPatchHub)."""
        values = [
            ("SilentMembers", "Count", float(len(self.silent))),
            ("GroupsBelowThreshold", "Count", float(self.below_threshold)),
            ("Members", "Count", float(self.members)),
            ("Groups", "Count", float(self.groups)),
        ]
        if self.percent is not None:
            values.insert(0, ("OrgCompliancePercent", "Percent", self.percent))
        return values


def _flag(group: GroupState) -> int:
    if group.compliance is None:
        return NO_SNAPSHOT
    return NON_COMPLIANT if group.compliance.non_compliant > 0 else COMPLIANT


def compute(view: OrgView, now: datetime, *, threshold: float, silent_after_hours: float) -> OrgFigures:
    with_snapshot = [g for g in view.groups if g.compliance is not None]
    instances = sum(g.compliance.instances for g in with_snapshot if g.compliance)
    compliant = sum(g.compliance.compliant for g in with_snapshot if g.compliance)
    percent = round(100 * compliant / instances, 2) if instances else None
    below = sum(
        1
        for g in with_snapshot
        if g.compliance and g.compliance.percent is not None and g.compliance.percent < threshold
    )
    non_compliant = [g for g in with_snapshot if g.compliance and g.compliance.non_compliant > 0]
    worst = sorted(
        non_compliant,
        key=lambda g: (
            g.compliance.percent if g.compliance and g.compliance.percent is not None else 0.0,
            -(g.compliance.non_compliant if g.compliance else 0),
            group_key(g),
        ),
    )[:WORST_GROUPS]
    cutoff = (now - timedelta(hours=silent_after_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    silent = [m for m in view.members if not m.last_event_at or m.last_event_at < cutoff]
    versions = dict(sorted(Counter(m.version or "unknown" for m in view.members).items()))
    flags = {group_key(g): _flag(g) for g in view.groups}
    member_keys = [member_key(m) for m in view.members]
    return OrgFigures(
        at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        threshold=threshold,
        silent_after_hours=silent_after_hours,
        members=len(view.members),
        groups=len(view.groups),
        instances=instances,
        compliant=compliant,
        percent=percent,
        below_threshold=below,
        worst=worst,
        silent=silent,
        versions=versions,
        flags=flags,
        member_keys=member_keys,
        changes=_changes(view.previous, flags, member_keys, percent),
    )


def _changes(
    previous: Mapping[str, Any] | None, flags: Mapping[str, int], members: list[str], percent: float | None
) -> Changes | None:
    if previous is None:
        return None
    before: dict[str, int] = {str(k): int(v) for k, v in dict(previous.get("groups") or {}).items()}
    members_before = {str(m) for m in previous.get("members") or ()}
    was = previous.get("percent")
    return Changes(
        newly_non_compliant=sorted(
            k for k, flag in flags.items() if flag == NON_COMPLIANT and before.get(k) != NON_COMPLIANT
        ),
        recovered=sorted(
            k for k, flag in flags.items() if flag == COMPLIANT and before.get(k) == NON_COMPLIANT
        ),
        new_groups=sorted(set(flags) - set(before)),
        gone_groups=sorted(set(before) - set(flags)),
        new_members=sorted(set(members) - members_before),
        gone_members=sorted(members_before - set(members)),
        percent_delta=None if percent is None or was is None else round(percent - float(was), 2),
        since=str(previous.get("at", "")),
    )


def remembered(figures: OrgFigures) -> dict[str, Any]:
    """What the next digest compares with."""
    return {
        "at": figures.at,
        "percent": figures.percent,
        "groups": figures.flags,
        "members": figures.member_keys,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _listed(title: str, keys: list[str]) -> list[str]:
    if not keys:
        return []
    lines = [f"{title} ({len(keys)}):"] + [f"  {key.replace('#', ' / ')}" for key in keys[:LIST_LIMIT]]
    if len(keys) > LIST_LIMIT:
        lines.append(f"  ... and {len(keys) - LIST_LIMIT} more")
    return lines


def render(figures: OrgFigures) -> tuple[str, str]:
    """The digest's subject (at most 100 characters, SNS's limit) and body."""
    subject = (
        f"TagPatch organization: {_pct(figures.percent)} compliant, {figures.below_threshold} groups "
        f"below {figures.threshold:g}%, {len(figures.silent)} silent"
    )[:SUBJECT_LIMIT]
    lines = [
        f"Organization digest at {figures.at}",
        "",
        f"Compliance: {_pct(figures.percent)} ({figures.compliant} of {figures.instances} instances) "
        f"over {figures.groups} groups in {figures.members} member stacks",
        f"Groups below {figures.threshold:g}%: {figures.below_threshold}",
        "",
        f"Worst groups (lowest compliance first, top {WORST_GROUPS}):",
    ]
    if not figures.worst:
        lines.append("  none: every group's newest snapshot is compliant")
    for group in figures.worst:
        facet = group.compliance
        assert facet is not None
        lines.append(
            f"  {group.account} {group.region} {group.group}: {_pct(facet.percent)}, "
            f"{facet.non_compliant} of {facet.instances} non-compliant, "
            f"since {group.non_compliant_since or facet.at}"
        )
    lines.append("")
    changes = figures.changes
    if changes is None:
        lines.append("Changes: this is the first digest; the next one lists what changed since it.")
    else:
        delta = "n/a" if changes.percent_delta is None else f"{changes.percent_delta:+.1f} points"
        lines.append(f"Changes since {changes.since or 'the last digest'}: compliance {delta}")
        for title, keys in (
            ("Newly non-compliant groups", changes.newly_non_compliant),
            ("Recovered groups", changes.recovered),
            ("New groups", changes.new_groups),
            ("Gone groups", changes.gone_groups),
            ("New members", changes.new_members),
            ("Gone members", changes.gone_members),
        ):
            lines += _listed(title, keys)
    lines.append("")
    lines.append(
        f"Silent members (no event for more than {figures.silent_after_hours:g} hours): {len(figures.silent)}"
    )
    for member in figures.silent[:LIST_LIMIT]:
        lines.append(
            f"  {member.account} {member.region}: last event {member.last_event_at or 'never'}"
            + (f" (OU {member.ou_name})" if member.ou_name else "")
        )
    if len(figures.silent) > LIST_LIMIT:
        lines.append(f"  ... and {len(figures.silent) - LIST_LIMIT} more")
    lines.append("")
    lines.append("Members by TagPatch version:")
    lines += [f"  {version}: {count}" for version, count in figures.versions.items()] or ["  none"]
    return subject, "\n".join(lines) + "\n"
