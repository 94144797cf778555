"""The reconciler's default group settings as the stack's defaults give them, for tests."""

from __future__ import annotations

from typing import Any

from emulator.scenarios.settings import RECONCILER_ENV
from tagpatch.reconciler.settings import GroupSettings, parse_settings


def default_settings(**override: Any) -> GroupSettings:
    from tagpatch.reconciler.config import DEFAULT_SETTINGS_ENV

    raw = {field: RECONCILER_ENV[var] for var, field in DEFAULT_SETTINGS_ENV.items() if RECONCILER_ENV[var]}
    return parse_settings({**raw, **override})
