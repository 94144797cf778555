"""Strict request validation against botocore's full service model.

botocore's own client-side validator (``botocore/validate.py``) checks only required members,
Python types and ``min``. The real services also enforce ``max``, ``enum`` and ``pattern``, and
reject unknown members. This module checks every request a botocore client makes against the
operation's complete input shape, so that a test fails as the real service would.

Usage (done once, by :func:`emulator.sandbox.install` for the tests and the benchmarks)::

    from emulator import strict_validation
    strict_validation.install()

Every client created afterwards (``boto3.client``, ``boto3.resource``, ``boto3.Session().client``,
``botocore.session.Session().create_client``) gets a handler for every ``before-parameter-build``
event (all services and operations), registered *last* and at the least specific level so it sees
the parameters after botocore's and boto3's own transformations (idempotency tokens, DynamoDB
high-level ``Table`` serialisation, condition expressions, ...). A violation raises
:class:`StrictValidationError` before anything is sent, so no emulator call happens.

Rules (Smithy semantics, as the service applies them):

* structure: required members present, no unknown members, at most one member set for unions;
* string: ``min``/``max`` length (code points), ``enum`` membership, ``pattern`` via ``regex.search``
  (not implicitly anchored; the third-party ``regex`` module understands ``\\p{L}`` etc.);
* integer/long/float/double: ``min``/``max`` value;
* list: ``min``/``max`` number of items; map: ``min``/``max`` number of entries, keys and values
  validated against their shapes;
* blob, timestamp, boolean: type only.

Patterns that the ``regex`` module cannot compile are recorded in :data:`UNCOMPILABLE_PATTERNS`
and skipped.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import botocore.session
import regex
from botocore.exceptions import ParamValidationError
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

__all__ = [
    "EXEMPT_OPERATIONS",
    "UNCOMPILABLE_PATTERNS",
    "StrictValidationError",
    "attach_to_client",
    "install",
    "is_installed",
    "uninstall",
    "validate_request",
    "validate_shape",
]

#: Patterns from service models that the ``regex`` module could not compile (skipped, never fatal).
UNCOMPILABLE_PATTERNS: set[str] = set()

#: ``(service_name, OperationName)`` pairs that are never validated (escape hatch for tests).
EXEMPT_OPERATIONS: set[tuple[str, str]] = set()

# Registered on the bare event name (matches every ``before-parameter-build.<service>.<Operation>``)
# and with ``register_last``: botocore runs handlers of deeper (more specific) nodes first, so a
# handler on ``before-parameter-build.*.*`` would run *before* boto3's DynamoDB
# ``before-parameter-build.dynamodb`` serialiser and see untransformed items.
_EVENT: Final = "before-parameter-build"
_UNIQUE_ID: Final = "tagpatch-strict-validation"
_MARKER: Final = "_tagpatch_strict_validation"

_PATTERN_CACHE: dict[str, regex.Pattern[str] | None] = {}
_PATTERN_LOCK = threading.Lock()


class _Switch:
    """Whether registered handlers act (``uninstall`` turns already-attached handlers off)."""

    active = False


_SWITCH = _Switch()


class StrictValidationError(ParamValidationError):
    """A request broke a rule of the operation's input shape that botocore does not check itself.

    ``operation`` is ``"<service>.<Operation>"``; ``violations`` lists one message per broken rule,
    each starting with the full parameter path.
    """

    fmt = "Strict validation failed for {operation}:\n{report}"

    def __init__(self, *, operation: str, violations: list[str], report: str | None = None) -> None:
        text = report if report is not None else "\n".join(f"  {v}" for v in violations)
        super().__init__(operation=operation, violations=list(violations), report=text)
        self.operation = operation
        self.violations = list(violations)


# --------------------------------------------------------------------------------------------
# Pure validation
# --------------------------------------------------------------------------------------------


def _compiled(pattern: str) -> regex.Pattern[str] | None:
    with _PATTERN_LOCK:
        if pattern in _PATTERN_CACHE:
            return _PATTERN_CACHE[pattern]
        try:
            compiled: regex.Pattern[str] | None = regex.compile(pattern)
        except Exception:  # any compile failure: record and skip, never crash
            compiled = None
            UNCOMPILABLE_PATTERNS.add(pattern)
        _PATTERN_CACHE[pattern] = compiled
        return compiled


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _show(shape: Shape, value: Any) -> str:
    if shape.metadata.get("sensitive"):
        size = len(value) if isinstance(value, str | bytes) else "?"
        return f"<sensitive, {size} chars>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _type_ok(type_name: str, value: Any) -> tuple[bool, str]:
    if type_name in {"structure", "map"}:
        return isinstance(value, Mapping), "a dict"
    if type_name == "list":
        return isinstance(value, list | tuple), "a list"
    if type_name == "string":
        return isinstance(value, str), "a str"
    if type_name in ("integer", "long"):
        return _is_int(value), "an int"
    if type_name in ("float", "double"):
        return _is_number(value), "a number"
    if type_name == "boolean":
        return isinstance(value, bool), "a bool"
    if type_name == "blob":
        ok = isinstance(value, bytes | bytearray | str) or hasattr(value, "read")
        return ok, "bytes, str or a file-like object"
    if type_name == "timestamp":
        ok = isinstance(value, _dt.datetime | _dt.date | str) or _is_number(value)
        return ok, "a datetime, ISO-8601 str or epoch number"
    return True, type_name  # document and other free-form types


def _check_range(label: str, actual: int | float | decimal.Decimal, meta: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    lo = meta.get("min")
    hi = meta.get("max")
    if lo is not None and actual < lo:
        out.append(f"{label} {actual} < min {lo}")
    if hi is not None and actual > hi:
        out.append(f"{label} {actual} > max {hi}")
    return out


def validate_shape(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Validate ``value`` against ``shape`` and everything below it; return violation messages.

    Each message is ``"<path>: <rule broken>"``; ``path`` is the dotted location of ``value``
    (list items as ``[i]``, map entries as ``["key"]``).
    """
    out: list[str] = []
    _validate(shape, value, path, out)
    return out


def _validate(shape: Shape, value: Any, path: str, out: list[str]) -> None:
    where = path or "<input>"
    type_name = shape.type_name
    ok, expected = _type_ok(type_name, value)
    if not ok:
        out.append(f"{where}: expected {expected} ({shape.name}), got {type(value).__name__}")
        return
    meta = shape.metadata
    if type_name == "structure":
        _validate_structure(shape, value, path, out)
    elif type_name == "list":
        out.extend(f"{where}: {m}" for m in _check_range("list length", len(value), meta))
        member = cast(ListShape, shape).member
        for index, item in enumerate(value):
            _validate(member, item, f"{path}[{index}]", out)
    elif type_name == "map":
        out.extend(f"{where}: {m}" for m in _check_range("map size", len(value), meta))
        key_shape = cast(MapShape, shape).key
        value_shape = cast(MapShape, shape).value
        for key, item in value.items():
            key_errors: list[str] = []
            _validate(key_shape, key, "", key_errors)
            out.extend(f"{where} key {key!r}: {e.split(': ', 1)[1]}" for e in key_errors)
            _validate(value_shape, item, f'{path}["{key}"]', out)
    elif type_name == "string":
        _validate_string(shape, value, where, out)
    elif type_name in ("integer", "long", "float", "double"):
        rules = _check_range("value", value, meta)
        out.extend(f"{where}: {m}" for m in rules)


def _validate_structure(shape: Shape, value: Mapping[str, Any], path: str, out: list[str]) -> None:
    where = path or "<input>"
    members: Mapping[str, Shape] = cast(StructureShape, shape).members
    for name in shape.required_members:
        if name not in value or value[name] is None:
            out.append(f"{_join(path, name)}: required member is missing")
    unknown = [k for k in value if k not in members]
    for name in unknown:
        valid = ", ".join(members)
        out.append(f"{_join(path, str(name))}: unknown member (valid members of {shape.name}: {valid})")
    if shape.metadata.get("union") or getattr(shape, "is_tagged_union", False):
        present = [k for k in value if k in members and value[k] is not None]
        if len(present) != 1:
            out.append(f"{where}: union {shape.name} needs exactly one member set, got {present}")
    for name, item in value.items():
        if name in members and item is not None:
            _validate(members[name], item, _join(path, name), out)


def _validate_string(shape: Shape, value: str, where: str, out: list[str]) -> None:
    meta = shape.metadata
    out.extend(f"{where}: {m}" for m in _check_range("length", len(value), meta))
    enum: list[str] | None = getattr(shape, "enum", None) or meta.get("enum")
    if enum and value not in enum:
        out.append(f"{where}: value {_show(shape, value)} not in enum {list(enum)}")
    pattern = meta.get("pattern")
    if pattern:
        compiled = _compiled(pattern)
        if compiled is not None and compiled.search(value) is None:
            out.append(f"{where}: value {_show(shape, value)} does not match pattern {pattern!r}")


def validate_request(operation_model: OperationModel, params: Mapping[str, Any]) -> list[str]:
    """Return every violation of ``params`` against ``operation_model``'s full input shape.

    Pure: no side effects except the pattern cache. An empty list means the request is valid.
    """
    shape = operation_model.input_shape
    if shape is None:
        return [f"{k}: unknown member (operation takes no input)" for k in params]
    return validate_shape(shape, params, "")


def _operation_label(model: OperationModel) -> str:
    return f"{model.service_model.service_name}.{model.name}"


# --------------------------------------------------------------------------------------------
# Installation into botocore
# --------------------------------------------------------------------------------------------


def _handler(params: Mapping[str, Any] | None = None, model: OperationModel | None = None, **_: Any) -> None:
    if not _SWITCH.active or model is None or params is None:
        return
    if (model.service_model.service_name, model.name) in EXEMPT_OPERATIONS:
        return
    violations = validate_request(model, params)
    if violations:
        raise StrictValidationError(operation=_operation_label(model), violations=violations)


def attach_to_client(client: Any) -> Any:
    """Register the strict handler on one existing client (clients made before ``install``)."""
    client.meta.events.register_last(_EVENT, _handler, unique_id=_UNIQUE_ID)
    return client


def _wrap_create_client(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        return attach_to_client(client)

    setattr(create_client, _MARKER, True)
    return create_client


def is_installed() -> bool:
    """True when ``botocore.session.Session.create_client`` is wrapped and the handler is active."""
    return _SWITCH.active and bool(getattr(botocore.session.Session.create_client, _MARKER, False))


def install(session_or_none: Any = None) -> None:
    """Turn strict validation on. Idempotent.

    With no argument, wraps ``botocore.session.Session.create_client`` so every client created
    afterwards, from any session, validates its requests. With a ``boto3.Session`` or a
    ``botocore.session.Session``, registers the handler on that session's event system only
    (clients it creates afterwards inherit it); the global wrap is then left as it is.
    """
    _SWITCH.active = True
    if session_or_none is not None:
        core = getattr(session_or_none, "_session", session_or_none)
        emitter = core.get_component("event_emitter")
        emitter.register_last(_EVENT, _handler, unique_id=_UNIQUE_ID)
        return
    current = botocore.session.Session.create_client
    if getattr(current, _MARKER, False):
        return
    setattr(botocore.session.Session, "create_client", _wrap_create_client(current))  # noqa: B010


def uninstall() -> None:
    """Undo :func:`install`: restore ``create_client`` and make already-registered handlers no-ops."""
    _SWITCH.active = False
    current = botocore.session.Session.create_client
    while getattr(current, _MARKER, False):
        current = getattr(current, "__wrapped__")  # noqa: B009
    setattr(botocore.session.Session, "create_client", current)  # noqa: B010
