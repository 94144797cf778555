"""The status collector's environment, validated once at cold start into typed settings.

Apart from :mod:`tagpatch.config` and without pydantic: importing pydantic and building a model is
~50 ms of cold start, and the collector uses pydantic for nothing else. The checks reproduce the
constraints the other functions' pydantic configurations express (lengths, patterns, int ranges),
and a bad environment is one :class:`ConfigError` naming every bad setting and its variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(RuntimeError):
    """The function's environment is incomplete or invalid."""


def require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _text(
    min_length: int = 0, max_length: int | None = None, pattern: str | None = None
) -> Callable[[str], Any]:
    # \Z: the end of the text only (pydantic's default regex engine; ``$`` would allow a final newline).
    compiled = re.compile(pattern) if pattern is not None else None

    def check(value: str) -> str:
        if len(value) < min_length:
            raise ValueError(f"should have at least {min_length} characters")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"should have at most {max_length} characters")
        if compiled is not None and compiled.search(value) is None:
            raise ValueError(f"should match pattern '{pattern}'")
        return value

    return check


_INTEGER = re.compile(r"\s*[+-]?[0-9]+(_[0-9]+)*(\.0+)?\s*")


def _integer(low: int, high: int) -> Callable[[str], Any]:
    def check(value: str) -> int:
        if not _INTEGER.fullmatch(value):
            raise ValueError("should be a valid integer")
        number = int(value.strip().split(".")[0])
        if not low <= number <= high:
            raise ValueError(f"should be between {low} and {high}")
        return number

    return check


_SNS_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}\Z"

# field -> (environment variable, check, default when unset or empty; None: required)
_FIELDS: dict[str, tuple[str, Callable[[str], Any], str | None]] = {
    "stack_name": ("STACK_NAME", _text(1, 128), None),
    "region": ("AWS_REGION", _text(pattern=r"^[a-z]{2}(-[a-z]+)+-\d\Z"), None),
    "table_name": ("COMMAND_STATUS_TABLE_NAME", _text(3, 255), None),
    "groups_table_name": ("GROUPS_TABLE_NAME", _text(3, 255), None),
    "alert_topic_arn": ("ALERT_TOPIC_ARN", _text(pattern=_SNS_TOPIC_ARN), None),
    "status_queue_url": ("STATUS_QUEUE_URL", _text(pattern=r"^https://\S+/\d{12}/\S+\Z"), None),
    "history_days": ("COMMAND_HISTORY_DAYS", _integer(1, 36500), "90"),
    # a flush is an SQS delay: at most 900 s
    "alert_cooldown_seconds": ("ALERT_COOLDOWN_SECONDS", _integer(60, 900), "900"),
    "max_alerts_per_command": ("MAX_ALERTS_PER_COMMAND", _integer(1, 100), "4"),
}


@dataclass(frozen=True, kw_only=True)
class CollectorConfig:
    """Status collector: Run Command notifications -> CommandStatusTable, AlertTopic."""

    stack_name: str
    region: str
    table_name: str
    groups_table_name: str
    alert_topic_arn: str
    status_queue_url: str
    history_days: int = 90
    alert_cooldown_seconds: int = 900
    max_alerts_per_command: int = 4


def load_collector_config(environ: Mapping[str, str]) -> CollectorConfig:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field, (variable, check, default) in _FIELDS.items():
        raw = require(environ, variable) if default is None else environ.get(variable, "") or default
        try:
            values[field] = check(raw)
        except ValueError as error:
            problems.append(f"{field} ({variable}={raw!r}) {error}")
    if problems:
        raise ConfigError(f"status collector environment is invalid: {'; '.join(problems)}")
    return CollectorConfig(**values)
