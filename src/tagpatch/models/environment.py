"""Functions' environments validated without pydantic: the shared checks, and the reporter's settings.

Importing pydantic and building a model is ~50 ms of cold start, and neither the status collector
nor the compliance reporter uses pydantic for anything else. The checks reproduce the constraints
pydantic expresses (lengths, patterns, int ranges), and a bad environment is one :class:`ConfigError`
naming every bad setting and its variable. :mod:`tagpatch.config` re-exports what is here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tagpatch.models.envelopes import bounded_text


class ConfigError(RuntimeError):
    """The function's environment is incomplete or invalid."""


def require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


Check = Callable[[str], Any]
# field -> (environment variable, check, default when unset or empty; None: required)
EnvFields = dict[str, tuple[str, Check, str | None]]


def text(min_length: int = 0, max_length: int | None = None, pattern: str | None = None) -> Check:
    """A setting's length and pattern check (patterns end in ``\\Z``: ``$`` would allow a final
    newline), worded to follow "<field> (<VARIABLE>=...)" in :func:`load_fields`."""
    return bounded_text(min_length, max_length, pattern, noun="")


_INTEGER = re.compile(r"\s*[+-]?[0-9]+(_[0-9]+)*(\.0+)?\s*")


def integer(low: int, high: int) -> Check:
    def check(value: str) -> int:
        if not _INTEGER.fullmatch(value):
            raise ValueError("should be a valid integer")
        number = int(value.strip().split(".")[0])
        if not low <= number <= high:
            raise ValueError(f"should be between {low} and {high}")
        return number

    return check


def load_fields(environ: Mapping[str, str], fields: EnvFields, what: str) -> dict[str, Any]:
    """Each field's checked value; a missing required variable, or one error naming every bad value."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field, (variable, check, default) in fields.items():
        raw = require(environ, variable) if default is None else environ.get(variable, "") or default
        try:
            values[field] = check(raw)
        except ValueError as error:
            problems.append(f"{field} ({variable}={raw!r}) {error}")
    if problems:
        raise ConfigError(f"{what} environment is invalid: {'; '.join(problems)}")
    return values


SNS_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}\Z"
TABLE_NAME = text(3, 255)
