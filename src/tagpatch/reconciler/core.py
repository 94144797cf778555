"""Converge SSM to one maintenance window, target and task per patch group.

``Reconciler.reconcile_group`` is the one operation every trigger ends in. It is idempotent
(the same call twice makes no second write), safe under concurrency (a lease per group in the
groups table), and converges from any state SSM is in: missing, half-made, duplicated, drifted.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from tagpatch import naming
from tagpatch.models.records import GroupRecord
from tagpatch.observability import logger, metrics
from tagpatch.reconciler.admission import name_problems, pattern_problem
from tagpatch.reconciler.config import ReconcilerConfig
from tagpatch.reconciler.placement import NoRoom, Placement, choose, member_of, split_place
from tagpatch.reconciler.plan import Action, plan_target, plan_task
from tagpatch.reconciler.ports import QuotaExceeded
from tagpatch.reconciler.reads import CachedSsm
from tagpatch.reconciler.settings import GroupSettings, InvalidSettings, parse_override
from tagpatch.reconciler.spec import (
    GROUP_TAG,
    KEY_TAG,
    OWNER_TAG,
    ROLE_TAG,
    SIBLING_TAG,
    GroupSpec,
    WindowBundle,
    WindowKey,
    WindowSpec,
    build_spec,
)
from tagpatch.reconciler.starts import Collision, WindowStart, stagger, start_collisions

if TYPE_CHECKING:
    from tagpatch.reconciler.ports import Fleet, Groups, Ssm

_NOT_LOADED: Any = object()
MAX_RERUNS = 5
# An SSM write (one attempt: 5 s connect + 30 s read, adapters/clients.py) plus the lease's
# release after it must fit in what is left of the lease and of the invocation.
WRITE_RESERVE_SECONDS = 70
# The scheduled reconcile starts no group with less than this left of the invocation.
START_RESERVE_SECONDS = 90
# Conditional writes of the placement item lost to another reconcile before giving up (re-read
# and chosen again each time).
PLACE_ATTEMPTS = 8
# Making a shared window: the lease of whoever makes it, and how long another waits for it.
# Whoever makes a window holds this lease; every SSM write it makes first checks that the lease
# lasts (as it checks the group's), so it stops before another may take the making over.
WINDOW_LEASE_SECONDS = 120
WINDOW_WAIT_SECONDS = 20
WINDOW_POLL_SECONDS = 1.0
# Groups per reconcile-queue message of the scheduled run (SSM's 20 tasks per window: one shared
# window's groups in one message, so the window is read once).
BATCH_GROUPS = 20


class OutOfTime(RuntimeError):
    """The invocation or the lease would end before the next SSM write could finish: not started."""


class MakingLeaseExpiring(RuntimeError):
    """The lease of making a shared window ends before the next SSM write could finish: another
    invocation may make the window now. The group's own lease still holds, so the group is saved
    as failed and its lease released as after any other failure."""


class LeaseExpiring(OutOfTime):
    """Our lease ends before the next SSM write could finish; another invocation may take it."""


@dataclass(frozen=True)
class _Placed:
    """Where one role of a group goes: ``place``, whether it is ``new`` (its window to be made),
    the place it was in (``current``, left once the new one is converged) and every place it is
    leaving."""

    role: str
    member: str
    place: str
    new: bool
    current: str | None
    leaving: set[str] = field(hash=False)


def _noop() -> None:
    return None


def _key_facts(key: WindowKey) -> dict[str, Any]:
    """The key as the placement item keeps it for reports (start collisions, the CLI)."""
    facts = {"role": key.role, "schedule": key.schedule, "timezone": key.timezone, "offset": key.offset}
    return {**facts, "enabled": key.enabled}


@dataclass
class Outcome:
    """What one reconcile of one group did; the handler logs it and turns it into metrics."""

    group: str
    # converged | unchanged | refused | rejected | unplaced (no room within SSM's quotas) | deferred
    # | empty | deleted | skipped | planned
    # | handed_on (out of time, queued for the sweep) | not_reached (out of time, not even queued)
    status: str
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    #: converged or unchanged: per role, the window ids as recorded (GroupRecord.windows)
    windows: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.actions) if self.status != "planned" else 0


class _Executor:
    """Carries out (or, in a dry run, only lists) the actions of a plan."""

    def __init__(
        self, ssm: Ssm, dry_run: bool, token: str, guard: Callable[[Action], None] | None = None
    ) -> None:
        self.ssm = ssm
        self.dry_run = dry_run
        self.token = token
        self.guard = guard
        self.done: list[str] = []

    def run(self, action: Action, call: Callable[[], Any], placeholder: str = "") -> Any:
        if self.dry_run:
            self.done.append(action.describe())
            return placeholder
        if self.guard is not None:
            self.guard(action)  # raises rather than write without the lease or the time to finish
        self.done.append(action.describe())
        logger.info(
            "applying", extra={"action": action.kind, "role": action.role, "drift": list(action.drift)}
        )
        return call()

    def client_token(self, role: str, kind: str) -> str:
        return f"{self.token}-{role}-{kind}"[:64]


class Reconciler:
    def __init__(
        self,
        config: ReconcilerConfig,
        ssm: Ssm,
        groups: Groups,
        ec2: Fleet,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ssm = ssm
        self.groups = groups
        self.ec2 = ec2
        self.clock = clock
        # When the current invocation ends (clock seconds), set by the handler from the Lambda
        # context; None: no limit (the CLI, tests).
        self.deadline: float | None = None
        self._lease_ends: float | None = None
        self._making_ends: float | None = None  # while making a shared window: when its lease ends
        self.sleep: Callable[[float], None] = time.sleep
        # Per message (or per direct call): the placement item as last read, the shared windows
        # whose own settings were verified, and whether stale targets and tasks are cleaned out.
        self._view: Placement | None = None
        self._verified: set[str] = set()
        self._cleaning = False
        self._in_message = False
        self._fresh: set[str] = set()  # windows made in this message
        self._verify_windows = True  # verify a shared window's own settings (not for a tag event)

    @contextmanager
    def _message(self, *, cleaning: bool) -> Iterator[None]:
        """One message's (or direct call's) worth of remembered reads; ``cleaning``: the scheduled
        verification, which also takes stale targets and tasks out of the windows it reads."""
        plain = self.ssm
        self.ssm = CachedSsm(plain)
        self._view, self._verified, self._cleaning, self._in_message = None, set(), cleaning, True
        self._fresh = set()
        try:
            yield
        finally:
            self.ssm = plain
            self._view, self._verified, self._cleaning, self._in_message = None, set(), False, False

    # time ------------------------------------------------------------------------------------
    def _writer(self) -> _Executor:
        """An executor whose every SSM write first checks that the lease and the invocation last."""
        return _Executor(self.ssm, False, uuid.uuid4().hex, self._check_time)

    def _check_time(self, action: Action) -> None:
        now = self.clock()
        if self._lease_ends is not None and now + WRITE_RESERVE_SECONDS > self._lease_ends:
            raise LeaseExpiring(
                f"{action.kind} not started: the group's lease ends in {self._lease_ends - now:.0f} s"
            )
        if self._making_ends is not None and now + WRITE_RESERVE_SECONDS > self._making_ends:
            raise MakingLeaseExpiring(
                f"{action.kind} not started: the lease of making the window ends in "
                f"{self._making_ends - now:.0f} s"
            )
        if self.deadline is not None and now + WRITE_RESERVE_SECONDS > self.deadline:
            raise OutOfTime(f"{action.kind} not started: the invocation ends in {self.deadline - now:.0f} s")

    def _seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    # settings --------------------------------------------------------------------------------
    def override_name(self, group: str) -> str:
        return f"{self.config.group_settings_prefix}{naming.group_slug(group)}"

    def _legacy_slug(self, record: GroupRecord | None) -> str:
        """The slug an older TagPatch kept ``record``'s group under, when it differs from today's:
        the record's own (keyed by the exact group name), written under naming rule 1, or kept
        since because its settings are still read from that path. Never derived from the name
        alone, so a new group whose name equals another group's old slug gets nothing of it."""
        if record is None:
            return ""
        if record.legacy_slug:
            return record.legacy_slug
        legacy = naming.legacy_group_slug(record.group)
        written_by_rule_1 = record.names < naming.NAMES_VERSION and record.slug == legacy
        return legacy if written_by_rule_1 and legacy != naming.group_slug(record.group) else ""

    def _migrating(self, record: GroupRecord) -> bool:
        """Whether ``record``'s windows were named and tagged by naming rule 1 differently from
        today (an older TagPatch's record, not yet converged under the current rule)."""
        group = record.group
        return (
            bool(record.windows)
            and record.names < naming.NAMES_VERSION
            and (
                naming.legacy_group_slug(group) != naming.group_slug(group)
                or naming.legacy_group_tag_value(group) != naming.group_tag_value(group)
            )
        )

    def settings_for(self, group: str, override_text: str | None) -> GroupSettings:
        override = {} if override_text is None else parse_override(override_text)
        settings = self.config.defaults.overridden(override) if override else self.config.defaults
        slots = self.config.stagger_slots
        if slots <= 1:
            return settings
        # StaggerSlots: the stack's default schedules shifted by a slot of the group (stable, by
        # name); a schedule the group sets itself is kept exactly (docs/schedules.md).
        staggered: dict[str, Any] = {}
        if "schedule" not in override:
            staggered["schedule"] = stagger(settings.schedule, group, slots)
        if "scanSchedule" not in override and settings.scan_schedule:
            staggered["scan_schedule"] = stagger(settings.scan_schedule, group, slots)
        return settings.model_copy(update=staggered)

    # one group -------------------------------------------------------------------------------
    def reconcile_group(
        self,
        group: str,
        *,
        verify: bool,
        dry_run: bool = False,
        override_text: str | None = _NOT_LOADED,
        instance_count: int | None = None,
        legacy_override_text: str | None = _NOT_LOADED,
    ) -> Outcome:
        """Converge ``group``. ``override_text``/``legacy_override_text``: its override at today's
        settings path and at its legacy one (:meth:`_legacy_slug`), if already read."""

        def work() -> Outcome:
            notes: list[str] = []
            outcome = self._reconcile_group(
                group,
                verify=verify,
                dry_run=dry_run,
                override_text=override_text,
                instance_count=instance_count,
                legacy_override_text=legacy_override_text,
                notes=notes,
            )
            outcome.reasons += [note for note in notes if note not in outcome.reasons]
            return outcome

        self._verify_windows = verify or dry_run
        try:
            if self._in_message:
                return work()
            with self._message(cleaning=False):
                return work()
        finally:
            self._verify_windows = True

    def _reconcile_group(
        self,
        group: str,
        *,
        verify: bool,
        dry_run: bool,
        override_text: str | None,
        instance_count: int | None,
        legacy_override_text: str | None,
        notes: list[str],
    ) -> Outcome:
        if not group.strip():
            reason = f"empty {self.config.tag_key} value: an empty tag value is not a patch group"
            logger.warning("group refused", extra={"group": group, "reason": reason})
            return Outcome(group, "skipped", reasons=[reason])
        if outside := pattern_problem(group, self.config.group_name_pattern, self.config.tag_key):
            logger.warning("group rejected", extra={"group": group, "reason": outside})
            return Outcome(group, "rejected", reasons=[outside])  # nothing written, not even a record
        given_text: list[str | None] = [] if override_text is _NOT_LOADED else [override_text]
        given_legacy: list[str | None] = [] if legacy_override_text is _NOT_LOADED else [legacy_override_text]
        computed: list[GroupSpec] = []
        legacy_used: list[str] = []  # the legacy slug the last spec's override was read under
        stored: list[GroupRecord | None] = []

        def known_record() -> GroupRecord | None:
            """The group's record, read once outside the lease."""
            if not stored:
                stored.append(self.groups.get(group))
            return stored[0]

        def desired(record_of: Callable[[], GroupRecord | None]) -> GroupSpec:
            """The spec from the settings as they are now; what was given or computed serves once."""
            if computed:
                return computed.pop()
            text = given_text.pop() if given_text else self.ssm.get_parameter(self.override_name(group))
            legacy_used.clear()
            # Only a name whose slug changed with naming rule 2 can have a legacy path: the record
            # is not even read for any other.
            maybe_moved = naming.legacy_group_slug(group) != naming.group_slug(group)
            if text is None and maybe_moved and (legacy := self._legacy_slug(record_of())):
                legacy_name = f"{self.config.group_settings_prefix}{legacy}"
                text = given_legacy.pop() if given_legacy else self.ssm.get_parameter(legacy_name)
                if text is not None:
                    legacy_used.append(legacy)
                    note = (
                        f"settings read from the legacy path {legacy_name}; move them to "
                        f"{self.override_name(group)} (docs/parameters.md)"
                    )
                    logger.warning(
                        "group settings found only at the path an older TagPatch used; move them",
                        extra={"group": group, "legacy": legacy_name, "path": self.override_name(group)},
                    )
                    if note not in notes:
                        notes.append(note)
            settings = self.settings_for(group, text)
            if problems := name_problems(group, settings, self.config.tag_key):
                raise InvalidSettings(problems)  # before the first write, like any bad setting
            return build_spec(group, settings, tag_key=self.config.tag_key, stack_name=self.config.stack_name)

        if dry_run or not verify:
            try:
                spec = desired(known_record)
            except InvalidSettings as error:
                return self._refuse(group, error.reasons, dry_run)
            if dry_run:
                record = known_record() or GroupRecord(group)
                return self._converge(spec, record, _Executor(self.ssm, True, "dry-run"), "planned")
            known = known_record()
            if known and known.status == "converged" and known.fingerprint == spec.fingerprint:
                logger.debug("group already converged", extra={"group": group})
                return Outcome(group, "unchanged", windows=known.windows)
            computed.append(spec)

        def attempt(record: GroupRecord) -> Outcome:
            if instance_count is not None:
                record.instance_count = instance_count
                record.empty_since = ""
            try:
                spec = desired(lambda: record)
            except InvalidSettings as error:
                self._log_refusal(group, error.reasons)
                record.status = "refused"
                record.reasons = error.reasons
                return Outcome(group, "refused", reasons=error.reasons)
            if rejection := self._admit(record):
                return _rejected(record, rejection)
            try:
                run = self._writer()
                outcome = self._converge(spec, record, run, "converged")
            except QuotaExceeded as error:
                return _rejected(record, f"SSM refused a new maintenance window: {error}")
            # Kept only while the settings still come from there: then it is forgotten, and with it
            # every later read of the legacy path.
            record.legacy_slug = legacy_used[0] if legacy_used else ""
            return outcome

        return self._with_lease(group, attempt)

    def _admit(self, record: GroupRecord) -> str | None:
        """Claim the group's slug in the groups table before its first SSM write: None once it
        holds the claim, else why it may not be managed. A group that had windows before claims
        existed (a table written by an older TagPatch) is admitted whatever the limit."""
        slug = naming.group_slug(record.group)
        if record.admitted_slug == slug:
            return None
        limit = None if record.windows else self.config.max_groups
        if reason := self.groups.claim(record.group, slug, limit):
            return reason
        record.admitted_slug = slug
        return None

    def _with_lease(self, group: str, work: Callable[[GroupRecord], Outcome]) -> Outcome:
        """Run ``work`` holding the group's lease, again while other invocations ask for a rerun."""
        owner = uuid.uuid4().hex
        record = None
        for _ in range(3):
            acquired_at = int(self.clock())
            record = self.groups.acquire(group, owner, acquired_at)
            if record is not None:
                self._lease_ends = acquired_at + self.groups.lease_seconds
                break
            if self.groups.mark_pending(group, int(self.clock())):
                logger.info(
                    "group is being reconciled by another invocation; asked it to rerun",
                    extra={"group": group},
                )
                return Outcome(group, "deferred")
        if record is None:
            self.groups.queue(group)  # the lease changed hands under us; the sweep makes sure
            return Outcome(group, "deferred")
        record.legacy_slug = self._legacy_slug(record)  # before the slug of today replaces it
        record.slug = naming.group_slug(group)
        try:
            return self._work_and_release(group, owner, record, work)
        finally:
            self._lease_ends = None

    def _work_and_release(
        self, group: str, owner: str, record: GroupRecord, work: Callable[[GroupRecord], Outcome]
    ) -> Outcome:
        for run in range(1, MAX_RERUNS + 1):
            try:
                outcome = work(record)
            except LeaseExpiring:
                # Nothing more was written; the lease ends by itself and may already be another's,
                # whose record must not be overwritten. The error reaches Lambda, which retries.
                logger.error("lease ending before the next write; stopped", extra={"group": group})
                raise
            except Exception as error:
                record.status = "failed"
                record.reasons = [f"{type(error).__name__}: {error}"[:1000]]
                record.updated_at = _now()
                self.groups.release(record, owner, force=True)
                raise
            record.updated_at = _now()
            if self.groups.release(record, owner, force=run == MAX_RERUNS):
                return outcome
            logger.info(
                "another invocation asked for a rerun while reconciling; reconciling again",
                extra={"group": group, "run": run},
            )
        raise AssertionError("unreachable: the last run releases the lease unconditionally")

    def _log_refusal(self, group: str, reasons: list[str]) -> None:
        logger.error(
            "group settings refused; the last good window is kept",
            extra={"group": group, "parameter": self.override_name(group), "reasons": reasons},
        )

    def _refuse(self, group: str, reasons: list[str], dry_run: bool) -> Outcome:
        self._log_refusal(group, reasons)
        if not dry_run:

            def record_refusal(record: GroupRecord) -> Outcome:
                record.status = "refused"
                record.reasons = reasons
                return Outcome(group, "refused", reasons=reasons)

            self._with_lease(group, record_refusal)
        return Outcome(group, "refused", reasons=reasons)

    # convergence -----------------------------------------------------------------------------
    def _converge(self, spec: GroupSpec, record: GroupRecord, run: _Executor, status: str) -> Outcome:
        """Place every role of the group (DynamoDB only), then converge its target and task in each
        place's shared window, then leave what it no longer uses; SSM writes only after placing."""
        group, legacy = spec.group, self._migrating(record)
        if problem := self._baseline_problem(spec, record):
            return _unplaced(record, problem)
        try:
            places = self._place_all(spec, run.dry_run)
        except NoRoom as error:
            return _unplaced(record, str(error))
        windows: dict[str, dict[str, str]] = {}
        for bundle in spec.bundles:
            windows[bundle.role] = self._converge_bundle(bundle, places[bundle.role], record, run, legacy)
        for role, ids in record.windows.items():
            if role not in windows:
                self._leave_role(role, ids, run, group, legacy)
        self._converge_baseline(spec, record, run)
        record.windows = windows
        record.names = naming.NAMES_VERSION
        record.fingerprint = spec.fingerprint
        record.baseline_id = spec.patch_baseline_id or ""
        record.status = "converged"
        record.reasons = []
        return Outcome(spec.group, status, actions=run.done, windows=windows)

    def _placement(self, *, fresh: bool = False) -> Placement:
        """The placement item, read once per message (every change of it is conditional, so a stale
        read only costs a retry); ``fresh``: read it again."""
        if fresh or self._view is None:
            self._view = self.groups.read_placement()
        return self._view

    def _place_all(self, spec: GroupSpec, dry_run: bool) -> dict[str, _Placed]:
        """Where each role of ``spec`` goes: its current place if that is of the role's key, else
        the first sibling window with room, else a new window; all chosen before any is written, so
        a group that does not fit is refused having changed nothing."""
        stack, capacity = self.config.stack_name, self.config.window_capacity
        for attempt in range(PLACE_ATTEMPTS):
            view = self._placement(fresh=attempt > 0)
            trial = copy.deepcopy(view)
            chosen: dict[str, _Placed] = {}
            for bundle in spec.bundles:
                member = member_of(bundle.role, spec.slug)
                key_id = bundle.key.key_id(stack)
                current = trial.members.get(member)
                leaving = set(trial.leaving.get(member, set()))
                if current is not None and split_place(current)[0] == key_id:
                    chosen[bundle.role] = _Placed(bundle.role, member, current, False, None, leaving)
                    continue
                describe = f"{bundle.role} schedule {bundle.key.schedule} ({bundle.key.timezone})"
                choice = choose(trial, key_id, capacity, self.config.max_windows, describe)
                trial.members[member] = choice.place
                trial.counts[choice.place] = trial.counts.get(choice.place, 0) + 1
                trial.windows += 1 if choice.new else 0
                if current is not None:
                    leaving.add(current)
                chosen[bundle.role] = _Placed(bundle.role, member, choice.place, choice.new, current, leaving)
            if dry_run:
                return chosen
            written = True
            for placed in chosen.values():
                if placed.place == view.members.get(placed.member):
                    continue  # there already
                bundle = next(b for b in spec.bundles if b.role == placed.role)
                if not self.groups.place(
                    placed.member,
                    placed.place,
                    new=placed.new,
                    current=placed.current,
                    capacity=capacity,
                    max_windows=self.config.max_windows,
                    key_id=bundle.key.key_id(stack),
                    key=_key_facts(bundle.key),
                ):
                    written = False
                    break
                view.members[placed.member] = placed.place
                view.counts[placed.place] = view.counts.get(placed.place, 0) + 1
                view.windows += 1 if placed.new else 0
                if placed.current is not None:
                    view.leaving.setdefault(placed.member, set()).add(placed.current)
            if written:
                return chosen
        raise RuntimeError(
            f"the placement item changed under {PLACE_ATTEMPTS} attempts in a row; retried later"
        )

    def _window_of(
        self,
        bundle: WindowBundle,
        placed: _Placed,
        private_id: str,
        run: _Executor,
        *,
        group: str,
        legacy: bool,
    ) -> str:
        """The id of ``placed``'s window: recorded in the placement item, or made (created, found
        after a crash, or a group's own window of an older TagPatch adopted) under its lease."""
        if window_id := self._placement().window_ids.get(placed.place):
            return window_id
        sibling = split_place(placed.place)[1]
        spec = bundle.key.window(self.config.stack_name, sibling, self.config.window_capacity)
        if run.dry_run:
            if private_id:
                run.run(Action("update_window", bundle.role, "adopted as a shared window", private_id), _noop)
                return private_id
            run.run(Action("create_window", bundle.role, "no window"), _noop)
            return "(new window)"
        owner, waited_until = uuid.uuid4().hex, self.clock() + WINDOW_WAIT_SECONDS
        while True:
            leased_at = int(self.clock())
            if self.groups.lease_window(placed.place, owner, leased_at, WINDOW_LEASE_SECONDS):
                self._making_ends = leased_at + WINDOW_LEASE_SECONDS
                try:
                    window_id = self._make_window(
                        spec, bundle.role, private_id, run, group=group, legacy=legacy
                    )
                except (LeaseExpiring, MakingLeaseExpiring):
                    raise  # the making may be another's by now: its lease is not ours to give up
                except Exception:
                    self.groups.release_window_lease(placed.place, owner)  # the next may try at once
                    raise
                finally:
                    self._making_ends = None
                if not self.groups.set_window(placed.place, window_id, owner):
                    raise RuntimeError(f"lost the lease of window {spec.name} while making it")
                self._placement().window_ids[placed.place] = window_id
                return window_id
            if window_id := self._placement(fresh=True).window_ids.get(placed.place):
                return window_id
            if self.clock() > waited_until:
                raise RuntimeError(f"window {spec.name} is still being made by another invocation")
            self.sleep(WINDOW_POLL_SECONDS)

    def _make_window(
        self, spec: WindowSpec, role: str, private_id: str, run: _Executor, *, group: str, legacy: bool
    ) -> str:
        ssm = self.ssm
        found = sorted(
            window["WindowId"]
            for window in ssm.find_windows(spec.name)
            if self._shared_ours(ssm.window_tags(window["WindowId"]), spec)
        )
        if found:  # made by an invocation that stopped before recording it
            for extra in found[1:]:
                run.run(
                    Action("delete_window", role, "duplicate window", extra),
                    partial(ssm.delete_window, extra),
                )
            return str(found[0])
        if private_id and self._adoptable(private_id, spec, group, legacy) and ssm.get_window(private_id):
            # The group's own window of an older TagPatch becomes the shared one: no new window
            # (the quota may be full of them) and its target and task never stop existing.
            reason = "the group's own window adopted as a shared window"
            run.run(
                Action("tag_window", role, reason, private_id),
                partial(ssm.tag_window, private_id, dict(spec.tags)),
            )
            run.run(
                Action("untag_window", role, reason, private_id),
                partial(ssm.untag_window, private_id, [GROUP_TAG]),
            )
            run.run(
                Action("update_window", role, reason, private_id),
                partial(ssm.update_window, spec.update_params(private_id)),
            )
            return private_id
        params = spec.create_params(run.client_token(role, f"window-{spec.name[-14:]}"))
        window_id = str(
            run.run(Action("create_window", role, "no window"), partial(ssm.create_window, params))
        )
        self._fresh.add(window_id)  # made now, as the spec says, empty: nothing to read back
        if not spec.enabled:  # CreateMaintenanceWindow has no Enabled; disable after
            disable = Action("update_window", role, "window is paused by its settings", window_id)
            run.run(disable, partial(ssm.update_window, spec.update_params(window_id)))
        return window_id

    def _adoptable(self, window_id: str, spec: WindowSpec, group: str, legacy: bool) -> bool:
        """Whether the group's own window of an older TagPatch may become ``spec``'s window: tagged
        as the group's, or already re-tagged as ``spec``'s by an adoption that stopped half-way."""
        return self._tagged_ours(window_id, group, legacy) or self._shared_ours(
            self.ssm.window_tags(window_id), spec
        )

    def _shared_ours(self, tags: dict[str, str], spec: WindowSpec) -> bool:
        wanted = dict(spec.tags)
        return all(tags.get(key) == wanted[key] for key in (OWNER_TAG, ROLE_TAG, KEY_TAG, SIBLING_TAG))

    def _verify_window(
        self,
        window_id: str,
        bundle: WindowBundle,
        placed: _Placed,
        run: _Executor,
        *,
        group: str,
        legacy: bool,
    ) -> bool:
        """Converge the shared window's own settings (once per message); False when it is gone."""
        if window_id in self._verified or window_id in self._fresh or window_id == "(new window)":
            return True
        if not self._verify_windows:
            return True  # a tag event's group joins the window as it is; the scheduled run verifies it
        sibling = split_place(placed.place)[1]
        spec = bundle.key.window(self.config.stack_name, sibling, self.config.window_capacity)
        actual = self.ssm.get_window(window_id)
        if actual is None:
            if not run.dry_run:
                logger.warning(
                    "a shared window was deleted outside TagPatch; making it again",
                    extra={"window_id": window_id},
                )
                self.groups.drop_window(placed.place, window_id)
                self._placement().window_ids.pop(placed.place, None)
            return False
        self._verified.add(window_id)
        if drift := spec.drift(actual):
            action = Action("update_window", bundle.role, "window drifted", window_id, tuple(drift))
            run.run(action, partial(self.ssm.update_window, spec.update_params(window_id)))
        if self._cleaning and not run.dry_run:
            self._clean_window(window_id, placed.place, bundle.role, run, group=group, legacy=legacy)
        return True

    def _clean_window(
        self, window_id: str, place: str, role: str, run: _Executor, *, group: str, legacy: bool
    ) -> None:
        """Deregister what is in a shared window but belongs to none of its groups (a group moved
        or deleted by a run that stopped half-way, or something added by hand). Listed first and
        the placement read after: a group registers only once placed, so nothing of a group that
        is joining is taken for stale."""
        targets, tasks = self.ssm.targets(window_id), self.ssm.tasks(window_id)
        allowed: set[str] = set()
        for member in self._placement(fresh=True).occupants(place):
            member_role, _, slug = member.partition(":")
            allowed.update(naming.member_names(slug, scan=member_role == "scan"))
        if legacy:  # this group's own, named by naming rule 1 in the window it just adopted
            allowed.update(naming.legacy_names(group, scan=role == "scan")[1:])
        for task in tasks:
            if task.get("Name") not in allowed:
                action = Action(
                    "deregister_task", role, "task of no group in this window", task["WindowTaskId"]
                )
                run.run(action, partial(self.ssm.deregister_task, window_id, task["WindowTaskId"]))
        for target in targets:
            if target.get("Name") not in allowed:
                action = Action(
                    "deregister_target", role, "target of no group in this window", target["WindowTargetId"]
                )
                run.run(action, partial(self.ssm.deregister_target, window_id, target["WindowTargetId"]))

    def _converge_bundle(
        self, bundle: WindowBundle, placed: _Placed, record: GroupRecord, run: _Executor, legacy: bool
    ) -> dict[str, str]:
        role, ssm, group = bundle.role, self.ssm, bundle.target.group
        recorded = record.windows.get(role, {})
        private_id = "" if recorded.get("place") else recorded.get("window_id", "")
        for _ in range(2):
            window_id = self._window_of(bundle, placed, private_id, run, group=group, legacy=legacy)
            if self._verify_window(window_id, bundle, placed, run, group=group, legacy=legacy):
                break
        else:
            raise RuntimeError(f"the shared window of {role} place {placed.place} keeps disappearing")
        created = window_id == "(new window)"
        # Only in a window made in this message are there no targets or tasks of this group yet
        # (its groups are reconciled one by one, each once).
        fresh = created or window_id in self._fresh
        self._fresh.discard(window_id)  # its maker registers in it now: read it from then on
        # An older naming rule's target and task names are this group's too (renamed as drift),
        # but only in the group's own window it just adopted: in a window other groups share
        # such a name may be another group's today.
        adopted = bool(private_id) and window_id == private_id
        _, legacy_target, legacy_task = (
            naming.legacy_names(group, scan=role == "scan") if legacy and adopted else (None, None, None)
        )
        ours_t = (bundle.target.name, legacy_target)
        targets = [] if fresh else [t for t in ssm.targets(window_id) if t.get("Name") in ours_t]
        tstep = plan_target(bundle.target, role, targets, legacy_target)
        target_id = tstep.keep_id or ""
        later: list[Action] = []
        for action in tstep.actions:
            if action.kind == "register_target":
                params = bundle.target.register_params(window_id, run.client_token(role, "target"))
                target_id = run.run(action, partial(ssm.register_target, params), "(new target)")
            elif action.kind == "update_target":
                run.run(action, partial(ssm.update_target, bundle.target.update_params(window_id, target_id)))
            else:
                later.append(action)  # deregister only once no task of ours can refer to it
        ours_k = (bundle.task.name, legacy_task)
        tasks: list[dict[str, Any]] = []
        if not fresh:
            tasks = [
                task
                for listed in ssm.tasks(window_id)
                if listed.get("Name") in ours_k and (task := ssm.get_task(window_id, listed["WindowTaskId"]))
            ]
        kstep = plan_task(bundle.task, role, tasks, target_id or None, legacy_task)
        task_id = kstep.keep_id or ""
        for action in kstep.actions:
            if action.kind == "register_task":
                params = bundle.task.register_params(window_id, target_id, run.client_token(role, "task"))
                task_id = run.run(action, partial(ssm.register_task, params), "(new task)")
            elif action.kind == "update_task":
                run.run(
                    action, partial(ssm.update_task, bundle.task.update_params(window_id, task_id, target_id))
                )
            else:
                run.run(action, partial(ssm.deregister_task, window_id, str(action.resource_id)))
        for action in later:
            run.run(action, partial(ssm.deregister_target, window_id, str(action.resource_id)))
        # Only now, with the group's target and task in its new place, does it leave the old ones.
        for old in sorted(placed.leaving - {placed.place}):
            self._leave_place(placed.member, old, run, moved=True)
        if private_id and private_id != window_id:
            self._remove_bundle(role, recorded, run, group, legacy)
        return {
            "window_id": window_id,
            "target_id": target_id,
            "task_id": task_id,
            "place": placed.place,
            "schedule": bundle.key.schedule,
            "timezone": bundle.key.timezone,
            "offset": str(bundle.key.offset),
            "enabled": "true" if bundle.key.enabled else "false",
        }

    def _leave_place(self, member: str, place: str, run: _Executor, *, moved: bool) -> None:
        """Deregister ``member``'s task and target from ``place``'s window, then count it out of the
        place; the last one out deletes the window."""
        role, _, slug = member.partition(":")
        window_id = self._placement().window_ids.get(place, "")
        if window_id:
            names = set(naming.member_names(slug, scan=role == "scan"))
            for task in self.ssm.tasks(window_id):
                if task.get("Name") in names:
                    action = Action("deregister_task", role, "group left this window", task["WindowTaskId"])
                    run.run(action, partial(self.ssm.deregister_task, window_id, task["WindowTaskId"]))
            for target in self.ssm.targets(window_id):
                if target.get("Name") in names:
                    action = Action(
                        "deregister_target", role, "group left this window", target["WindowTargetId"]
                    )
                    run.run(action, partial(self.ssm.deregister_target, window_id, target["WindowTargetId"]))
        if run.dry_run:
            return
        count = self.groups.leave(member, place, moved=moved)
        view = self._placement()
        if moved:
            view.leaving.get(member, set()).discard(place)
        elif view.members.get(member) == place:
            del view.members[member]
        if count is not None:
            view.counts[place] = count
        if count == 0:
            self._retire(place, window_id, role, run)

    def _retire(self, place: str, window_id: str, role: str, run: _Executor) -> None:
        """Delete the window of a place nobody is in any more, if nobody joined meanwhile."""
        if not self.groups.retire(place, has_window=bool(window_id)):
            return
        view = self._placement()
        view.counts.pop(place, None)
        if not window_id:
            view.windows -= 1
            return
        self._retire_window(place, window_id, run, role)

    def _retire_window(self, place: str, window_id: str, run: _Executor, role: str = "window") -> None:
        """Delete a retired place's window (if it is this stack's window of that key) and free it."""
        view = self._placement()
        tags = self.ssm.window_tags(window_id)
        if tags.get(OWNER_TAG) == self.config.stack_name and tags.get(KEY_TAG) == split_place(place)[0]:
            action = Action("delete_window", role, "no group left in this window", window_id)
            run.run(action, partial(self.ssm.delete_window, window_id))
        self.groups.forget_window(place)
        view.window_ids.pop(place, None)
        view.windows -= 1

    def _leave_role(self, role: str, ids: dict[str, str], run: _Executor, group: str, legacy: bool) -> None:
        """The group no longer has ``role`` (or no instances): leave its places, or delete the
        group's own window of an older TagPatch."""
        member = member_of(role, naming.group_slug(group))
        view = self._placement()
        for old in sorted(view.leaving.get(member, set())):
            self._leave_place(member, old, run, moved=True)
        if place := view.members.get(member):
            self._leave_place(member, place, run, moved=False)
        if ids.get("window_id") and not ids.get("place"):
            self._remove_bundle(role, ids, run, group, legacy)

    def _remove_bundle(
        self, role: str, ids: dict[str, str], run: _Executor, group: str, legacy: bool = False
    ) -> None:
        """Delete a group's own window (an older TagPatch's) if tagged as ``group``'s (``legacy``:
        or as rule 1 tagged it)."""
        window_id = ids.get("window_id", "")
        if window_id and not run.dry_run and not self._tagged_ours(window_id, group, legacy):
            logger.warning(
                "a window recorded for this group is not tagged as its own; not deleting it",
                extra={"group": group, "role": role, "window_id": window_id},
            )
            return
        if window_id:
            action = Action(
                "delete_window", role, "the group's own window, replaced by a shared one", window_id
            )
            run.run(action, partial(self.ssm.delete_window, window_id))
        logger.info("removed window", extra={"group": group, "role": role, "window_id": window_id})

    def _tagged_ours(self, window_id: str, group: str, legacy: bool) -> bool:
        tags = self.ssm.window_tags(window_id)
        if KEY_TAG in tags:
            return False  # a shared window is no group's own
        return self._is_ours(tags, group) or (legacy and self._is_ours(tags, group, legacy=True))

    def _is_ours(
        self, tags: dict[str, str], group: str, role: str | None = None, *, legacy: bool = False
    ) -> bool:
        """Whether a window's tags say it is ``group``'s own (and ``role``'s) in this stack, as
        today's naming rule tags it (``legacy``: as naming rule 1 tagged it)."""
        group_tag = naming.legacy_group_tag_value(group) if legacy else naming.group_tag_value(group)
        return (
            tags.get(OWNER_TAG) == self.config.stack_name
            and tags.get(GROUP_TAG) == group_tag
            and (role is None or tags.get(ROLE_TAG) == role)
        )

    def _baseline_problem(self, spec: GroupSpec, record: GroupRecord) -> str | None:
        """Why the group cannot be registered with its patch baseline (SSM's 25 patch groups per
        baseline), before any write; None when it can or already is."""
        wanted = spec.patch_baseline_id
        if not wanted or wanted == record.baseline_id:
            return None
        registered = self.ssm.groups_of_baseline(wanted)
        limit = self.config.max_groups_per_baseline
        if spec.group in registered or len(registered) < limit:
            return None
        return (
            f"patch baseline {wanted} already has {len(registered)} patch groups and SSM allows "
            f"{limit} (MaxGroupsPerBaseline); give this group another baseline (patchBaselineId)"
        )

    def _converge_baseline(self, spec: GroupSpec, record: GroupRecord, run: _Executor) -> None:
        wanted, recorded = spec.patch_baseline_id or "", record.baseline_id
        if recorded and recorded != wanted and spec.group in self.ssm.groups_of_baseline(recorded):
            action = Action("deregister_baseline", "baseline", "previous patch baseline", recorded)
            run.run(action, partial(self.ssm.deregister_baseline, recorded, spec.group))
        if wanted and spec.group not in self.ssm.groups_of_baseline(wanted):
            action = Action("register_baseline", "baseline", "patch baseline not registered", wanted)
            run.run(action, partial(self.ssm.register_baseline, wanted, spec.group))

    # every group -----------------------------------------------------------------------------
    def reconcile_all(self, only: set[str] | None = None) -> list[Outcome]:
        """Backfill and drift repair in this invocation (the CLI, a direct request): every message
        of :meth:`plan_run` carried out in turn while the invocation has time; the groups of the
        rest are handed on to the sweep."""
        messages = self.plan_run(only)
        outcomes: list[Outcome] = []
        for index, body in enumerate(messages):
            left = self._seconds_left()
            if left is not None and left < START_RESERVE_SECONDS:
                rest = [group for later in messages[index:] for group in (*later["groups"], *later["empty"])]
                outcomes += self._hand_on(rest)
                break
            outcomes += self.run_message(body)  # hands on the rest of its groups itself when short
        return outcomes

    # the reconcile queue ----------------------------------------------------------------------
    def plan_run(self, only: set[str] | None = None) -> list[dict[str, Any]]:
        """The scheduled run as reconcile-queue messages (JSON objects), verified by consumers:
        ``{"kind": "verify", "groups": {group: instances}, "empty": [group, ...],
        "overrides": {group: text}, "legacy": {group: text}}``, at most :data:`BATCH_GROUPS`
        groups each. ``only``: just these groups (the sweep)."""
        sizes = self.ec2.group_sizes(self.config.tag_key)
        overrides = self.ssm.parameters_under(self.config.group_settings_prefix)
        known = {record.group: record for record in self.groups.all()}

        def window_first(group: str) -> tuple[str, str]:
            """Groups of one shared window next to each other, so one message reads it once."""
            record = known.get(group)
            return (record.windows.get("install", {}).get("place", "~") if record else "~", group)

        wanted: list[tuple[str, int | None]] = [
            (group, sizes[group])
            for group in sorted(sizes, key=window_first)
            if only is None or group in only
        ]
        for group, record in sorted(known.items()):
            if group in sizes or (only is not None and group not in only):
                continue
            reported = record.status == "deleted" or (
                record.status == "empty" and not self._delete_when_empty(record)
            )
            if only is None and reported:
                continue
            wanted.append((group, None))
        if only is None:
            self._retire_orphans()
            self.report_collisions()
        messages: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GROUPS):
            chunk = wanted[start : start + BATCH_GROUPS]
            body: dict[str, Any] = {"kind": "verify", "groups": {}, "empty": []}
            body.update(overrides={}, legacy={})
            for group, count in chunk:
                if count is None:
                    body["empty"].append(group)
                    continue
                body["groups"][group] = count
                if (text := overrides.get(self.override_name(group))) is not None:
                    body["overrides"][group] = text
                legacy = self._legacy_slug(known.get(group))
                if legacy and (old := overrides.get(f"{self.config.group_settings_prefix}{legacy}")):
                    body["legacy"][group] = old
            messages.append(body)
        return messages

    def _retire_orphans(self) -> None:
        """Delete the windows of places whose last group left but whose window outlived the run
        that emptied them (it stopped between the two writes)."""
        view = self._placement(fresh=True)
        run = self._writer()
        for place in view.retired():
            if place in view.creating and view.creating[place] >= self.clock():
                continue
            self._retire_window(place, view.window_ids[place], run)

    def report_collisions(self, now: datetime | None = None) -> list[Collision]:
        """Minutes in the coming 35 days when more of this stack's windows start than SSM runs at
        once (ConcurrentWindowExecutions): logged one by one, counted in WindowStartCollisions."""
        view = self._placement()  # as _retire_orphans just read it, in the scheduled run
        windows = []
        for place, window_id in sorted(view.window_ids.items()):
            facts = json.loads(view.keys.get(split_place(place)[0], "{}"))
            if "schedule" in facts:
                windows.append(
                    WindowStart(
                        window_id,
                        facts["schedule"],
                        facts.get("timezone", "UTC"),
                        int(facts.get("offset", 0)),
                        bool(facts.get("enabled", True)),
                    )
                )
        limit = self.config.concurrent_executions
        found = start_collisions(windows, limit, now or datetime.now(UTC))
        for collision in found[:20]:
            logger.warning(
                "maintenance windows start at the same minute; SSM runs the rest later",
                extra={"collision": collision.description, "windows": list(collision.window_ids)},
            )
        metrics.add_metric(name="WindowStartCollisions", unit=MetricUnit.Count, value=len(found))
        return found

    def run_message(self, body: dict[str, Any]) -> list[Outcome]:
        """Carry out one reconcile-queue message of :meth:`plan_run` (``kind`` "verify"), or one
        group's (``{"kind": "group", "group": name, "verify": bool}``)."""
        if body.get("kind") == "group":
            return [self.reconcile_group(str(body["group"]), verify=bool(body.get("verify", True)))]
        with self._message(cleaning=True):
            return self._verify_message(body)

    def _verify_message(self, body: dict[str, Any]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        overrides, legacy = body.get("overrides", {}), body.get("legacy", {})
        order = [*body.get("groups", {}), *body.get("empty", [])]
        for index, group in enumerate(order):
            left = self._seconds_left()
            if left is not None and left < START_RESERVE_SECONDS:
                return outcomes + self._hand_on(order[index:])
            if group not in body.get("groups", {}):
                if (record := self.groups.get(group)) is not None:
                    outcomes.append(self._safely(group, partial(self.handle_empty_group, record)))
                continue
            count = body["groups"][group]
            work: Callable[[], Outcome] = partial(
                self.reconcile_group,
                group,
                verify=True,
                override_text=overrides.get(group),
                instance_count=int(count),
                legacy_override_text=legacy.get(group),
            )
            outcomes.append(self._safely(group, work))
        return outcomes

    def reconcile_pending(self) -> list[Outcome]:
        """The sweep: every group asked for a rerun whose lease is free (its holder died, or a
        scheduled run ran out of time), reconciled as the scheduled run would."""
        pending = set(self.groups.pending(int(self.clock())))
        if not pending:
            return []
        logger.info("reconciling groups left pending", extra={"groups": sorted(pending)[:50]})
        return self.reconcile_all(only=pending)

    def _hand_on(self, groups: list[str]) -> list[Outcome]:
        """Out of time: queue ``groups`` for the sweep while time allows; say which were not."""
        outcomes: list[Outcome] = []
        for index, group in enumerate(groups):
            left = self._seconds_left()
            if left is not None and left < WRITE_RESERVE_SECONDS / 2:
                rest = groups[index:]
                logger.error(
                    "out of time: groups neither reconciled nor queued; the next scheduled run retries them",
                    extra={"count": len(rest), "groups": rest[:100]},
                )
                reason = "not reached: the invocation ran out of time"
                return outcomes + [Outcome(name, "not_reached", reasons=[reason]) for name in rest]
            self.groups.queue(group)
            outcomes.append(Outcome(group, "handed_on", reasons=["out of time; queued for the next sweep"]))
        logger.warning(
            "out of time: groups queued for the sweep", extra={"count": len(groups), "groups": groups[:100]}
        )
        return outcomes

    def _safely(self, group: str, work: Callable[[], Outcome]) -> Outcome:
        try:
            return work()
        except Exception as error:  # one failing group must not stop the others
            logger.exception("group failed to reconcile", extra={"group": group})
            return Outcome(group, "failed", reasons=[f"{type(error).__name__}: {error}"])

    def _delete_when_empty(self, record: GroupRecord) -> bool:
        """Whether an empty group's windows go: at once (DeleteWindowsOfEmptyGroups=true), or once
        it has been empty for EmptyGroupWindowDays (0: never)."""
        if self.config.delete_empty_group_windows:
            return True
        days = self.config.empty_group_window_days
        if not days or not record.empty_since:
            return False
        since = datetime.fromisoformat(record.empty_since).timestamp()
        return self.clock() - since >= days * 86400

    def handle_empty_group(self, record: GroupRecord) -> Outcome:
        group = record.group
        if not self._delete_when_empty(record):
            logger.warning(
                "patch group has no instances left; its window is kept (DeleteWindowsOfEmptyGroups=false)",
                extra={"group": group, "windows": record.windows},
            )

            def mark_empty(current: GroupRecord) -> Outcome:
                current.status = "empty"
                current.instance_count = 0
                current.empty_since = current.empty_since or _now()
                return Outcome(group, "empty", reasons=["no instances carry this group's tag"])

            return self._with_lease(group, mark_empty)

        def delete_windows(current: GroupRecord) -> Outcome:
            run = self._writer()
            legacy = self._migrating(current)
            # Every role the record knows, and any the placement item knows (a group placed whose
            # window SSM then refused has no window in its record, but holds its place).
            for role in sorted({*current.windows, "install", "scan"}):
                self._leave_role(role, current.windows.get(role, {}), run, group, legacy)
            if current.baseline_id:
                action = Action("deregister_baseline", "baseline", "group emptied", current.baseline_id)
                run.run(action, partial(self.ssm.deregister_baseline, current.baseline_id, group))
            if current.admitted_slug:  # its place under MaxGroups is free again
                self.groups.unclaim(group, current.admitted_slug)
            current.status, current.windows, current.baseline_id = "deleted", {}, ""
            current.admitted_slug = ""
            current.instance_count, current.fingerprint = 0, ""
            current.empty_since = current.empty_since or _now()
            logger.warning(
                "patch group has no instances left; its windows were deleted", extra={"group": group}
            )
            return Outcome(
                group, "deleted", actions=run.done, reasons=["no instances carry this group's tag"]
            )

        return self._with_lease(group, delete_windows)

    def group_for_parameter(self, parameter_name: str) -> str | None:
        """The known group whose override parameter is ``parameter_name``, if any."""
        slug = parameter_name.removeprefix(self.config.group_settings_prefix)
        records = self.groups.all()
        for record in records:
            if naming.group_slug(record.group) == slug:
                return record.group
        # else a group whose settings are still read from the path an older TagPatch used
        for record in records:
            if self._legacy_slug(record) == slug:
                return record.group
        return None


def _unplaced(record: GroupRecord, reason: str) -> Outcome:
    """The group does not fit within SSM's quotas (windows, tasks per window, groups per baseline)."""
    logger.error("group not placed; no SSM resource made", extra={"group": record.group, "reason": reason})
    record.status = "unplaced"
    record.reasons = [reason]
    return Outcome(record.group, "unplaced", reasons=[reason])


def _rejected(record: GroupRecord, reason: str) -> Outcome:
    """The group may not be managed (not admitted, or SSM's quota is used up): nothing is made."""
    logger.warning("group rejected; no SSM resource made", extra={"group": record.group, "reason": reason})
    record.status = "rejected"
    record.reasons = [reason]
    return Outcome(record.group, "rejected", reasons=[reason])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
