"""Each function's environment is one pydantic model, validated once at cold start.

A model's fields carry their environment variable as alias (``Field(alias="STACK_NAME")``);
:func:`load_environment` reads the variables (an empty one counts as unset, so the default applies)
and turns every problem into one :class:`ConfigError` naming the setting, its variable and its
value, not a KeyError deep inside a handler. Nothing reads ``os.environ`` at import time: handlers
call the loaders lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from tagpatch.models.base import message


class ConfigError(RuntimeError):
    """The function's environment is incomplete or invalid."""


class Environment(BaseModel):
    """A function's settings; patterns end in ``\\Z`` (``$`` would allow a final newline)."""

    model_config = ConfigDict(frozen=True, regex_engine="python-re", populate_by_name=True)


E = TypeVar("E", bound=Environment)

TableName = Annotated[str, StringConstraints(min_length=3, max_length=255)]
SnsTopicArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}\Z")
]


def load_environment(model: type[E], environ: Mapping[str, str], what: str, **values: Any) -> E:
    """``model`` from the variables in ``environ`` (and ``values`` given by field name).

    A missing required variable is ``environment variable X is not set``; bad values are one error
    ``<what> environment is invalid: <field> (<VARIABLE>='<value>'): <problem>; ...``.
    """
    variables = {field.alias or name: name for name, field in model.model_fields.items()}
    data: dict[str, Any] = {alias: environ[alias] for alias in variables if environ.get(alias, "") != ""}
    try:
        return model.model_validate({**data, **values})
    except ValidationError as error:
        problems = error.errors(include_url=False)
        missing = [str(p["loc"][0]) for p in problems if p["type"] == "missing" and p["loc"][0] in variables]
        if missing:
            raise ConfigError(
                "; ".join(f"environment variable {name} is not set" for name in missing)
            ) from None
        described = []
        for problem in problems:
            head = str(problem["loc"][0]) if problem["loc"] else ""
            where = ".".join(str(part) for part in problem["loc"][1:])
            label = f"{variables[head]} ({head}={data.get(head)!r})" if head in variables else head
            described.append(f"{label}{'.' + where if where else ''}: {message(problem)}")
        raise ConfigError(f"{what} environment is invalid: {'; '.join(described)}") from None
