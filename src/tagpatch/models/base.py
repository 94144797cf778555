"""What every model of ours shares: pydantic, frozen, patterns searched as Python's ``re``, and one
refusal, :class:`Invalid`, listing every problem with its location in pydantic's words
(``eventTime: Field required``)."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]


class Invalid(ValueError):
    """Data that does not have the expected shape: every problem, each with where it is."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{'.'.join(str(part) for part in loc) or '(root)'}: {msg}" for loc, msg in problems)
        )

    @classmethod
    def of(cls, error: ValidationError) -> Invalid:
        return cls([(tuple(problem["loc"]), message(problem)) for problem in error.errors(include_url=False)])

    @property
    def locations(self) -> list[Loc]:
        return [loc for loc, _ in self.problems]


def message(problem: ErrorDetails) -> str:
    """pydantic's message for one problem, without the "Value error, " it puts before our own."""
    error = problem.get("ctx", {}).get("error")
    return str(error) if problem["type"] == "value_error" and error is not None else problem["msg"]


class Model(BaseModel):
    """Frozen, unknown fields ignored; patterns are searched with Python's ``re`` (as the SSM and
    IAM documentation write them); :meth:`parse` refuses with :class:`Invalid`."""

    model_config = ConfigDict(frozen=True, regex_engine="python-re")

    @classmethod
    def parse(cls, data: Any) -> Self:
        """``data`` as this model, or :class:`Invalid`."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise Invalid.of(error) from None


class StrictModel(Model):
    """A request we define ourselves: an unknown key is a mistake, refused."""

    model_config = ConfigDict(extra="forbid")
