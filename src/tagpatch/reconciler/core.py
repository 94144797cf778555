"""Converge SSM to one maintenance window, target and task per patch group.

``Reconciler.reconcile_group`` is the one operation every trigger ends in. It is idempotent
(the same call twice makes no second write), safe under concurrency (a lease per group in the
groups table), and converges from any state SSM is in: missing, half-made, duplicated, drifted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from tagpatch import naming
from tagpatch.models.records import GroupRecord
from tagpatch.observability import logger
from tagpatch.reconciler.admission import name_problems, pattern_problem
from tagpatch.reconciler.config import ReconcilerConfig
from tagpatch.reconciler.plan import Action, plan_target, plan_task, plan_window
from tagpatch.reconciler.ports import QuotaExceeded
from tagpatch.reconciler.settings import GroupSettings, InvalidSettings, parse_override
from tagpatch.reconciler.spec import GROUP_TAG, OWNER_TAG, ROLE_TAG, GroupSpec, WindowBundle, build_spec

if TYPE_CHECKING:
    from tagpatch.reconciler.ports import Fleet, Groups, Ssm

_NOT_LOADED: Any = object()
MAX_RERUNS = 5
# An SSM write (one attempt: 5 s connect + 30 s read, adapters/clients.py) plus the lease's
# release after it must fit in what is left of the lease and of the invocation.
WRITE_RESERVE_SECONDS = 70
# The scheduled reconcile starts no group with less than this left of the invocation.
START_RESERVE_SECONDS = 90
# Groups per reconcile-queue message of the scheduled run (SSM's 20 tasks per window: one shared
# window's groups in one message, so the window is read once).
BATCH_GROUPS = 20


class OutOfTime(RuntimeError):
    """The invocation or the lease would end before the next SSM write could finish: not started."""


class LeaseExpiring(OutOfTime):
    """Our lease ends before the next SSM write could finish; another invocation may take it."""


@dataclass
class Outcome:
    """What one reconcile of one group did; the handler logs it and turns it into metrics."""

    group: str
    # converged | unchanged | refused | rejected | deferred | empty | deleted | skipped | planned
    # | handed_on (out of time, queued for the sweep) | not_reached (out of time, not even queued)
    status: str
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

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
        return record.names < naming.NAMES_VERSION and (
            naming.legacy_group_slug(group) != naming.group_slug(group)
            or naming.legacy_group_tag_value(group) != naming.group_tag_value(group)
        )

    def settings_for(self, group: str, override_text: str | None) -> GroupSettings:
        if override_text is None:
            return self.config.defaults
        return self.config.defaults.overridden(parse_override(override_text))

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
                return Outcome(group, "unchanged")
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
        windows: dict[str, dict[str, str]] = {}
        legacy = self._migrating(record)
        for bundle in spec.bundles:
            recorded = record.windows.get(bundle.role, {})
            windows[bundle.role] = self._converge_bundle(bundle, recorded, run, legacy)
        for role, ids in record.windows.items():
            if role not in windows:
                self._remove_bundle(role, ids, run, spec.group, legacy)
        self._converge_baseline(spec, record, run)
        record.windows = windows
        record.names = naming.NAMES_VERSION
        record.fingerprint = spec.fingerprint
        record.baseline_id = spec.patch_baseline_id or ""
        record.status = "converged"
        record.reasons = []
        return Outcome(spec.group, status, actions=run.done)

    def _is_ours(
        self, tags: dict[str, str], group: str, role: str | None = None, *, legacy: bool = False
    ) -> bool:
        """Whether a window's tags say it is ``group``'s (and ``role``'s) in this stack, as today's
        naming rule tags it (``legacy``: as naming rule 1 tagged it)."""
        group_tag = naming.legacy_group_tag_value(group) if legacy else naming.group_tag_value(group)
        return (
            tags.get(OWNER_TAG) == self.config.stack_name
            and tags.get(GROUP_TAG) == group_tag
            and (role is None or tags.get(ROLE_TAG) == role)
        )

    def _owned_windows(
        self, bundle: WindowBundle, recorded_id: str | None, group: str, legacy: bool = False
    ) -> tuple[list[dict[str, Any]], bool]:
        """This group's windows for ``bundle``, and whether the one recorded needs today's tags.

        The recorded window, if it is this group's, and every other window of this stack with the
        bundle's name tagged for this group and role: looked up by name and tag even when a window
        is recorded, because a window made by an invocation that lost its lease is recorded nowhere
        and would otherwise patch the group a second time on every schedule. The planner keeps the
        recorded one and deletes the others.

        ``legacy``: the record is an older TagPatch's (:meth:`_migrating`); its recorded window is
        adopted if tagged as naming rule 1 tagged this group's, and then renamed and re-tagged.
        Only the recorded window: one found by name is adopted only if tagged under today's rule.
        """
        owned: list[dict[str, Any]] = []
        retag = False
        recorded = self.ssm.get_window(recorded_id) if recorded_id else None
        if recorded_id and recorded:
            if legacy:
                tags = self.ssm.window_tags(recorded_id)
                if self._is_ours(tags, group, bundle.role):
                    owned.append(recorded)  # re-tagged already, by an attempt that stopped since
                elif self._is_ours(tags, group, bundle.role, legacy=True):
                    owned.append(recorded)
                    retag = True
            # A window named as this group's is its own (a slug is claimed by one group only);
            # any other (renamed by hand, or recorded before slugs were claimed) must say so.
            elif recorded.get("Name") == bundle.window.name or self._is_ours(
                self.ssm.window_tags(recorded_id), group, bundle.role
            ):
                owned.append(recorded)
            if not owned:
                logger.warning(
                    "the recorded window is not this group's; leaving it alone",
                    extra={"group": group, "window_id": recorded_id, "window_name": recorded.get("Name")},
                )
        adopted = recorded_id if owned else None
        for identity in self.ssm.find_windows(bundle.window.name):
            if identity["WindowId"] == adopted:
                continue
            tags = self.ssm.window_tags(identity["WindowId"])
            if not self._is_ours(tags, group, bundle.role):
                logger.warning(
                    "a window with TagPatch's name is not this group's in this stack; leaving it alone",
                    extra={"window_id": identity["WindowId"], "window_name": bundle.window.name},
                )
                continue
            if window := self.ssm.get_window(identity["WindowId"]):
                owned.append(window)
        return owned, retag

    def _converge_bundle(
        self, bundle: WindowBundle, recorded: dict[str, str], run: _Executor, legacy: bool = False
    ) -> dict[str, str]:
        role, ssm, group = bundle.role, self.ssm, bundle.target.group
        owned, retag = self._owned_windows(bundle, recorded.get("window_id"), group, legacy)
        step = plan_window(bundle.window, role, owned, recorded.get("window_id"))
        window_id = step.keep_id or ""
        created = step.keep_id is None
        if retag and step.keep_id:
            # Tags first, then the name (an update_window below): an attempt stopped in between
            # leaves a window tagged as today's rule says, which the next one adopts and renames.
            action = Action("tag_window", role, "window tagged under naming rule 1", window_id)
            run.run(action, partial(ssm.tag_window, window_id, dict(bundle.window.tags)))
        # An older naming rule's target and task names are this group's too (renamed as drift).
        _, legacy_target, legacy_task = (
            naming.legacy_names(group, scan=role == "scan") if legacy else (None, None, None)
        )
        for action in step.actions:
            if action.kind == "create_window":
                params = bundle.window.create_params(run.client_token(role, "window"))
                window_id = run.run(action, partial(ssm.create_window, params), "(new window)")
                if not bundle.window.enabled:  # CreateMaintenanceWindow has no Enabled; disable after
                    disable = Action("update_window", role, "window is paused by its settings", window_id)
                    run.run(disable, partial(ssm.update_window, bundle.window.update_params(window_id)))
            elif action.kind == "update_window":
                run.run(action, partial(ssm.update_window, bundle.window.update_params(window_id)))
            else:
                run.run(action, partial(ssm.delete_window, str(action.resource_id)))

        targets = [] if created else ssm.targets(window_id)
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

        tasks: list[dict[str, Any]] = []
        if not created:
            tasks = [task for tid in ssm.task_ids(window_id) if (task := ssm.get_task(window_id, tid))]
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
        return {"window_id": window_id, "target_id": target_id, "task_id": task_id}

    def _remove_bundle(
        self, role: str, ids: dict[str, str], run: _Executor, group: str, legacy: bool = False
    ) -> None:
        """Delete a recorded window if tagged as ``group``'s (``legacy``: or as rule 1 tagged it)."""
        window_id = ids.get("window_id", "")
        if window_id and not run.dry_run and not self._tagged_ours(window_id, group, legacy):
            logger.warning(
                "a window recorded for this group is not tagged as its own; not deleting it",
                extra={"group": group, "role": role, "window_id": window_id},
            )
            return
        if window_id:
            action = Action("delete_window", role, "window no longer wanted", window_id)
            run.run(action, partial(self.ssm.delete_window, window_id))
        logger.info("removed window", extra={"group": group, "role": role, "window_id": window_id})

    def _tagged_ours(self, window_id: str, group: str, legacy: bool) -> bool:
        tags = self.ssm.window_tags(window_id)
        return self._is_ours(tags, group) or (legacy and self._is_ours(tags, group, legacy=True))

    def _converge_baseline(self, spec: GroupSpec, record: GroupRecord, run: _Executor) -> None:
        wanted, recorded = spec.patch_baseline_id or "", record.baseline_id
        if not wanted and not recorded:
            return
        current = self.ssm.baselines_of(spec.group)
        if recorded and recorded != wanted and recorded in current:
            action = Action("deregister_baseline", "baseline", "previous patch baseline", recorded)
            run.run(action, partial(self.ssm.deregister_baseline, recorded, spec.group))
        if wanted and wanted not in current:
            action = Action("register_baseline", "baseline", "patch baseline not registered", wanted)
            run.run(action, partial(self.ssm.register_baseline, wanted, spec.group))

    # every group -----------------------------------------------------------------------------
    def reconcile_all(self, only: set[str] | None = None) -> list[Outcome]:
        """Backfill and drift repair: every group on instances, and every known group that emptied.

        ``only``: just these groups (the sweep), each handled whatever its recorded state. Groups
        are started while the invocation has time; the rest are handed on to the sweep.
        """
        sizes = self.ec2.group_sizes(self.config.tag_key)
        overrides = self.ssm.parameters_under(self.config.group_settings_prefix)
        known = {record.group: record for record in self.groups.all()}
        plan: list[tuple[str, Callable[[], Outcome]]] = []
        for group in sorted(sizes):
            if only is not None and group not in only:
                continue
            text = overrides.get(self.override_name(group))
            legacy = self._legacy_slug(known.get(group))
            work: Callable[[], Outcome] = partial(
                self.reconcile_group,
                group,
                verify=True,
                override_text=text,
                instance_count=sizes[group],
                legacy_override_text=overrides.get(f"{self.config.group_settings_prefix}{legacy}")
                if legacy
                else None,
            )
            plan.append((group, work))
        for group, record in sorted(known.items()):
            if only is not None:
                if group in only and group not in sizes:
                    plan.append((group, partial(self.handle_empty_group, record)))
                continue
            reported = record.status == "deleted" or (
                record.status == "empty" and not self._delete_when_empty(record)
            )
            if group in sizes or reported:
                continue  # has instances, or its emptiness was already dealt with
            plan.append((group, partial(self.handle_empty_group, record)))
        outcomes: list[Outcome] = []
        for index, (group, work) in enumerate(plan):
            left = self._seconds_left()
            if left is not None and left < START_RESERVE_SECONDS:
                outcomes += self._hand_on([name for name, _ in plan[index:]])
                break
            outcomes.append(self._safely(group, work))
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
        wanted: list[tuple[str, int | None]] = [
            (group, sizes[group]) for group in sorted(sizes) if only is None or group in only
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

    def run_message(self, body: dict[str, Any]) -> list[Outcome]:
        """Carry out one reconcile-queue message of :meth:`plan_run` (``kind`` "verify"), or one
        group's (``{"kind": "group", "group": name, "verify": bool}``)."""
        if body.get("kind") == "group":
            return [self.reconcile_group(str(body["group"]), verify=bool(body.get("verify", True)))]
        outcomes: list[Outcome] = []
        overrides, legacy = body.get("overrides", {}), body.get("legacy", {})
        for group, count in body.get("groups", {}).items():
            work: Callable[[], Outcome] = partial(
                self.reconcile_group,
                group,
                verify=True,
                override_text=overrides.get(group),
                instance_count=int(count),
                legacy_override_text=legacy.get(group),
            )
            outcomes.append(self._safely(group, work))
        for group in body.get("empty", []):
            record = self.groups.get(group)
            if record is not None:
                outcomes.append(self._safely(group, partial(self.handle_empty_group, record)))
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
            for role, ids in current.windows.items():
                self._remove_bundle(role, ids, run, group, legacy)
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


def _rejected(record: GroupRecord, reason: str) -> Outcome:
    """The group may not be managed (not admitted, or SSM's quota is used up): nothing is made."""
    logger.warning("group rejected; no SSM resource made", extra={"group": record.group, "reason": reason})
    record.status = "rejected"
    record.reasons = [reason]
    return Outcome(record.group, "rejected", reasons=[reason])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
