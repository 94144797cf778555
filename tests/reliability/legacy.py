"""The TagPatch before shared windows (commit b20fedf: one window per patch group), run against
the test's emulated account, so upgrade tests start from exactly the state it left behind.

Its ``src/tagpatch`` is taken from git history into a temporary folder and imported in place of
today's package for the duration of :func:`old_tagpatch` (today's modules are put back after):
the old reconciler then writes the groups table and SSM through the test's own clients.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from tests.conftest import REPO_ROOT

#: The last commit whose reconciler gave every patch group its own window ("TagPatch-<slug>",
#: tagged tagpatch:group=<group>), its record's windows without a place.
OLD_COMMIT = "b20fedf"
_SOURCE: dict[str, Path] = {}
_OLD_MODULES: dict[str, ModuleType] = {}


def _old_source() -> Path:
    """``src`` of :data:`OLD_COMMIT`, extracted once per test process."""
    if "src" not in _SOURCE:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", OLD_COMMIT, "src/tagpatch"],
            check=True,
            capture_output=True,
        ).stdout
        folder = Path(tempfile.mkdtemp(prefix=f"tagpatch-{OLD_COMMIT}-"))
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        _SOURCE["src"] = folder / "src"
    return _SOURCE["src"]


def _ours(name: str) -> bool:
    return name == "tagpatch" or name.startswith("tagpatch.")


@contextmanager
def old_tagpatch() -> Iterator[Any]:
    """Inside: ``import tagpatch...`` gives :data:`OLD_COMMIT`'s modules. Yields a namespace with
    its ``naming``, ``core``, ``config`` and the adapters ``ssm``, ``groups``, ``ec2``."""
    source = str(_old_source())
    today = {name: module for name, module in sys.modules.items() if _ours(name)}
    for name in today:
        del sys.modules[name]
    sys.modules.update(_OLD_MODULES)
    sys.path.insert(0, source)
    try:
        yield SimpleNamespace(
            naming=importlib.import_module("tagpatch.naming"),
            core=importlib.import_module("tagpatch.reconciler.core"),
            config=importlib.import_module("tagpatch.reconciler.config"),
            ssm=importlib.import_module("tagpatch.adapters.ssm"),
            groups=importlib.import_module("tagpatch.adapters.groups"),
            ec2=importlib.import_module("tagpatch.adapters.ec2"),
        )
    finally:
        sys.path.remove(source)
        for name in [name for name in sys.modules if _ours(name)]:
            module = sys.modules.pop(name)
            if str(getattr(module, "__file__", "") or "").startswith(source):
                _OLD_MODULES[name] = module
        sys.modules.update(today)


def old_reconciler(old: Any, world: Any) -> Any:
    """:data:`OLD_COMMIT`'s Reconciler with ``world``'s settings and clients (call inside
    :func:`old_tagpatch`)."""
    config = old.config.load_reconciler_config(world.env)
    return old.core.Reconciler(
        config,
        old.ssm.SsmGateway(world.ssm),
        old.groups.GroupsRepository(config.groups_table_name, world.ddb),
        old.ec2.Ec2Gateway(world.ec2),
    )


def reconcile_with_old_tagpatch(world: Any, groups: list[str] | None = None) -> list[Any]:
    """Reconcile ``groups`` (None: a scheduled run over every group) as :data:`OLD_COMMIT` did;
    the outcomes' statuses."""
    with old_tagpatch() as old:
        reconciler = old_reconciler(old, world)
        if groups is None:
            outcomes = reconciler.reconcile_all()
        else:
            outcomes = [reconciler.reconcile_group(group, verify=False) for group in groups]
        return [outcome.status for outcome in outcomes]
