"""Deterministic, SSM-safe names for a patch group.

A PatchGroup tag value may be up to 256 characters of any Unicode; maintenance-window and task
names allow only ``[a-zA-Z0-9_.-]{3,128}`` and Parameter Store names a similar set. A value that
is already safe is used as is, unless it ends like a hashed slug (``-`` and 10 hex digits). Any
other value is folded to ASCII, unsafe runs become ``-``, it is shortened, and a hash of the
original value is appended. A value used as is therefore never equals another value's hashed
slug (``Prod-DB-90a2e279c2`` no longer takes over ``Prod DB!``'s window), and two hashed slugs are
equal only if 40 bits of SHA-256 collide, which the reconciler's slug claim in the groups table
turns into a refusal: two tag values never share a slug, a settings path or a window.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

WINDOW_PREFIX = "TagPatch-"
SCAN_SUFFIX = "-scan"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HASHED = re.compile(r"-[0-9a-f]{10}\Z")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.]+")
_MAX_READABLE = 64
_HASH_CHARS = 10


#: Version of the naming rule; a groups-table record carries the one its windows were named by
#: (none: 1, the rule before names ending like a hashed slug were hashed too).
NAMES_VERSION = 2


def group_slug(group: str) -> str:
    """The filesystem- and SSM-safe identity of ``group`` (at most 75 characters)."""
    if _SAFE.match(group) and not _HASHED.search(group):
        return group
    return _hashed_slug(group)


def legacy_group_slug(group: str) -> str:
    """The slug naming rule 1 gave ``group`` (every safe value as is), which named the windows
    and the settings path of groups recorded by an older TagPatch."""
    return group if _SAFE.match(group) else _hashed_slug(group)


def _hashed_slug(group: str) -> str:
    folded = unicodedata.normalize("NFKD", group).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE_RUN.sub("-", folded).strip("-._")[:_MAX_READABLE].rstrip("-._")
    digest = hashlib.sha256(group.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{readable}-{digest}" if readable else f"g-{digest}"


def _names(slug: str, *, scan: bool) -> tuple[str, str, str]:
    """The window, target and task names of the install (or scan) window of the group ``slug``."""
    base, suffix = f"{WINDOW_PREFIX}{slug}", SCAN_SUFFIX if scan else ""
    return f"{base}{suffix}", f"{base}-target{suffix}", f"{base}-{'scan' if scan else 'patch'}"


def member_names(slug: str, *, scan: bool = False) -> tuple[str, str]:
    """The target and task names of the group ``slug`` in a shared window (install or scan)."""
    _, target, task = _names(slug, scan=scan)
    return target, task


def window_name(group: str, *, scan: bool = False) -> str:
    return _names(group_slug(group), scan=scan)[0]


def target_name(group: str, *, scan: bool = False) -> str:
    return _names(group_slug(group), scan=scan)[1]


def task_name(group: str, *, scan: bool = False) -> str:
    return _names(group_slug(group), scan=scan)[2]


#: Characters of SSM's tag-value and patch-group rule ``^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$``, besides
#: letters, separators and numbers (the Unicode categories the Java classes name).
_SSM_TEXT_PUNCTUATION = frozenset("_.:/=+-@")


def ssm_text_ok(text: str) -> bool:
    r"""Whether every character of ``text`` fits ``[\p{L}\p{Z}\p{N}_.:/=+\-@]``: the rule of SSM tag
    values and patch group names (``RegisterPatchBaselineForPatchGroup``, ``AddTagsToResource``)."""
    return all(char in _SSM_TEXT_PUNCTUATION or unicodedata.category(char)[0] in "LZN" for char in text)


def group_tag_value(group: str) -> str:
    """The window's ``tagpatch:group`` tag: ``group`` where the tag-value rule allows it and the
    slug would be ``group`` itself too, else the slug; so, like the slug, one value per group."""
    if len(group) <= 256 and ssm_text_ok(group) and not _HASHED.search(group):
        return group
    return group_slug(group)


def legacy_names(group: str, *, scan: bool = False) -> tuple[str, str, str]:
    """The window, target and task names naming rule 1 gave ``group``'s install or scan window."""
    return _names(legacy_group_slug(group), scan=scan)


def legacy_group_tag_value(group: str) -> str:
    """The ``tagpatch:group`` tag naming rule 1 wrote: ``group`` where SSM's tag-value rule allows
    it, else its legacy slug: ``_group_tag_value`` of spec.py under rule 1, character for character
    (``str.isalnum`` differs from :func:`ssm_text_ok` for a few numeric symbols)."""
    allowed = all(
        ch.isalnum() or ch in "_.:/=+-@" or unicodedata.category(ch).startswith("Z") for ch in group
    )
    if allowed and len(group) <= 256:
        return group
    return legacy_group_slug(group)


def short_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
