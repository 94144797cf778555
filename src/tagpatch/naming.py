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


def group_slug(group: str) -> str:
    """The filesystem- and SSM-safe identity of ``group`` (at most 75 characters)."""
    if _SAFE.match(group) and not _HASHED.search(group):
        return group
    folded = unicodedata.normalize("NFKD", group).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE_RUN.sub("-", folded).strip("-._")[:_MAX_READABLE].rstrip("-._")
    digest = hashlib.sha256(group.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{readable}-{digest}" if readable else f"g-{digest}"


def window_name(group: str, *, scan: bool = False) -> str:
    return f"{WINDOW_PREFIX}{group_slug(group)}{SCAN_SUFFIX if scan else ''}"


def target_name(group: str) -> str:
    return f"{WINDOW_PREFIX}{group_slug(group)}-target"


def task_name(group: str, *, scan: bool = False) -> str:
    return f"{WINDOW_PREFIX}{group_slug(group)}-{'scan' if scan else 'patch'}"


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


def short_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
