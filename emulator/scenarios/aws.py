"""The reconciler wired to moto: clients, groups table, instances, call counts."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto.dynamodb.models import DynamoDBBackend

from emulator.scenarios.settings import RECONCILER_ENV
from tagpatch import naming
from tagpatch.adapters.ec2 import Ec2Gateway
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.ssm import SsmGateway
from tagpatch.reconciler.config import load_reconciler_config
from tagpatch.reconciler.core import Reconciler
from tagpatch.reconciler.spec import build_spec

WRITE_PREFIXES = ("Create", "Update", "Delete", "Register", "Deregister", "Add", "Put", "Remove")
_ATOMIC = threading.RLock()


def make_dynamodb_writes_atomic() -> None:
    """DynamoDB applies a conditional write atomically; moto checks and writes in two Python steps.

    Under threads the emulator could let two conditional writes through that DynamoDB would not
    (or fail a read with "dictionary changed size during iteration"), so the concurrency tests
    serialise moto's item operations the way the real service isolates them.
    """
    for name in ("update_item", "put_item", "delete_item", "get_item", "scan", "query"):
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_tagpatch_atomic", False):
            continue

        def atomic(
            self: Any, *args: Any, __original: Any = original, __name: str = name, **kwargs: Any
        ) -> Any:
            with _ATOMIC:
                result = __original(self, *args, **kwargs)
                # moto serialises the item it returns after this call; a copy made under the lock
                # keeps another thread's write from changing it meanwhile, as DynamoDB answers a
                # read from one consistent version of the item.
                return copy.deepcopy(result) if __name == "get_item" else result

        atomic._tagpatch_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


@dataclass
class CallLog:
    """Every API call a client makes (one per call, not per retry attempt)."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._record)
        return client

    def _record(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append((model.service_model.service_name, model.name))

    def count(self, service: str, *, writes: bool | None = None) -> int:
        return sum(
            1
            for svc, op in self.calls
            if svc == service and (writes is None or op.startswith(WRITE_PREFIXES) == writes)
        )

    def ops(self, service: str) -> Counter[str]:
        return Counter(op for svc, op in self.calls if svc == service)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


class World:
    """An emulated account with the groups table made, and a reconciler wired to it."""

    def __init__(self, **env: str) -> None:
        make_dynamodb_writes_atomic()
        self.env = {**RECONCILER_ENV, **env}
        self.log = CallLog()
        self.ssm = self.log.attach(boto3.client("ssm"))
        self.ddb = self.log.attach(boto3.client("dynamodb"))
        self.ec2 = self.log.attach(boto3.client("ec2"))
        self.ddb.create_table(
            TableName=self.env["GROUPS_TABLE_NAME"],
            KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.image_id = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        self.reconciler = self.make_reconciler()
        self.log.reset()

    def make_reconciler(self) -> Reconciler:
        config = load_reconciler_config(self.env)
        return Reconciler(
            config,
            SsmGateway(self.ssm),
            GroupsRepository(config.groups_table_name, self.ddb),
            Ec2Gateway(self.ec2),
        )

    def launch(self, group: str | None, count: int = 1) -> list[str]:
        tags = (
            [{"ResourceType": "instance", "Tags": [{"Key": "PatchGroup", "Value": group}]}]
            if group is not None
            else []
        )
        response = self.ec2.run_instances(
            ImageId=self.image_id,
            MinCount=count,
            MaxCount=count,
            InstanceType="t3.micro",
            TagSpecifications=tags,
        )
        self.log.reset()
        return [instance["InstanceId"] for instance in response["Instances"]]

    def windows(self) -> list[dict[str, Any]]:
        return list(self.ssm.describe_maintenance_windows()["WindowIdentities"])

    def plant_window(self, name: str, tags: dict[str, str] | None = None) -> str:
        """A daily window made behind TagPatch's back (by hand, another team, an attacker); its id."""
        return str(
            self.ssm.create_maintenance_window(
                Name=name,
                Schedule="rate(1 day)",
                Duration=2,
                Cutoff=1,
                AllowUnassociatedTargets=False,
                Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
            )["WindowId"]
        )

    def window_named(self, name: str) -> dict[str, Any]:
        found = [w for w in self.windows() if w["Name"] == name]
        assert len(found) == 1, f"{len(found)} windows named {name}"
        return _plain(self.ssm.get_maintenance_window(WindowId=found[0]["WindowId"]))

    def window_of(self, group: str, role: str = "install") -> dict[str, Any]:
        """The (shared) window ``group``'s ``role`` is in, as its groups-table record says."""
        window_id = self.record(group)["windows"][role]["window_id"]
        return _plain(self.ssm.get_maintenance_window(WindowId=window_id))

    def task_names(self) -> set[str]:
        """The names of every task in every window (one per group and role)."""
        return {
            task["Name"]
            for window in self.windows()
            for task in self.ssm.describe_maintenance_window_tasks(WindowId=window["WindowId"])["Tasks"]
        }

    def group_target(self, group: str, role: str = "install") -> dict[str, Any]:
        """``group``'s own target in its shared window (found by the name TagPatch gives it)."""
        name = naming.member_names(naming.group_slug(group), scan=role == "scan")[0]
        window_id = self.window_of(group, role)["WindowId"]
        found = [t for t in self.targets(window_id) if t.get("Name") == name]
        assert len(found) == 1, f"{len(found)} targets named {name}"
        return found[0]

    def group_task(self, group: str, role: str = "install") -> dict[str, Any]:
        """``group``'s own Run Command task in its shared window."""
        name = naming.member_names(naming.group_slug(group), scan=role == "scan")[1]
        window_id = self.window_of(group, role)["WindowId"]
        found = [t for t in self.tasks(window_id) if t.get("Name") == name]
        assert len(found) == 1, f"{len(found)} tasks named {name}"
        return found[0]

    def shared_window_name(self, role: str = "install", sibling: int = 0, **override: Any) -> str:
        """The name of the ``sibling``-th shared window of the key the stack's defaults with
        ``override`` (camelCase settings) give ``role``: ``TagPatch-<role>-<key id>-<sibling>``."""
        config = self.reconciler.config
        settings = config.defaults.overridden(override)
        spec = build_spec("any", settings, tag_key=config.tag_key, stack_name=config.stack_name)
        bundle = spec.install if role == "install" else spec.scan
        assert bundle is not None, "no scan schedule in these settings"
        return bundle.key.window(config.stack_name, sibling, config.window_capacity).name

    def window_tags(self, window_id: str) -> dict[str, str]:
        tags = self.ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)
        return {tag["Key"]: tag["Value"] for tag in tags["TagList"]}

    def placement(self) -> dict[str, Any]:
        """The placement item of the groups table, as plain values ({} before the first group)."""
        item = self.ddb.get_item(
            TableName=self.env["GROUPS_TABLE_NAME"], Key={"group": {"S": "#tagpatch:placement"}}
        ).get("Item", {})
        return {key: TypeDeserializer().deserialize(value) for key, value in item.items()}

    def targets(self, window_id: str) -> list[dict[str, Any]]:
        return list(self.ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"])

    def tasks(self, window_id: str) -> list[dict[str, Any]]:
        ids = [
            t["WindowTaskId"] for t in self.ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
        ]
        return [_plain(self.ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=i)) for i in ids]

    def record(self, group: str) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.env["GROUPS_TABLE_NAME"], Key={"group": {"S": group}})["Item"]
        return {key: TypeDeserializer().deserialize(value) for key, value in item.items()}


def _plain(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}
