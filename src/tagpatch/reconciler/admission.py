"""Whether a patch group's name can be managed: every constraint of every API the name reaches,
checked before the reconciler's first write, so a name SSM would reject is refused with its reason
instead of failing halfway through (a window made, its baseline refused).

Where the name goes, and what constrains it (SSM API reference, botocore's ``ssm`` model):

* window, target and task ``Name``, the override's parameter name, ``OutputS3KeyPrefix``: the
  slug (:func:`tagpatch.naming.group_slug`), safe by construction;
* the ``tagpatch:group`` window tag: the name where ``TagValue``'s rule allows it, else the slug;
* ``Description`` fields: the name shortened to fit their 128 characters;
* the target's ``Values``: the name as is (``TargetValue`` has no pattern; an EC2 tag value is
  at most 256 characters);
* with a patch baseline, ``RegisterPatchBaselineForPatchGroup``'s ``PatchGroup`` (and
  ``DescribePatchGroupState``'s, which the reporter calls for registered groups): 1-256
  characters of ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``
  (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterPatchBaselineForPatchGroup.html).
  Control characters, ``#``, ``%``, quotes, ``<>``, ``\\``, zero-width and bidirectional marks
  (Unicode category Cf) and emoji (So) all fail it;
* the groups table: keys starting with :data:`RESERVED_PREFIX` are TagPatch's own items.
"""

from __future__ import annotations

import re
import unicodedata

from tagpatch import naming
from tagpatch.models.records import RESERVED_PREFIX
from tagpatch.reconciler.settings import GroupSettings

MAX_NAME = 256


def _shown(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, unicodedata.category(char))})"


def name_problems(group: str, settings: GroupSettings, tag_key: str) -> list[str]:
    """Why ``group`` cannot be managed under ``settings``; empty when it can."""
    problems: list[str] = []
    if len(group) > MAX_NAME:
        problems.append(f"{tag_key} value is {len(group)} characters; EC2 and SSM allow at most {MAX_NAME}")
    if group.startswith(RESERVED_PREFIX):
        problems.append(f"{tag_key} values starting with {RESERVED_PREFIX!r} are reserved for TagPatch")
    if settings.patch_baseline_id and not naming.ssm_text_ok(group):
        bad = sorted({char for char in group if not naming.ssm_text_ok(char)})
        problems.append(
            f"patch group name has characters RegisterPatchBaselineForPatchGroup refuses "
            f"({', '.join(_shown(char) for char in bad[:5])}); with patch baseline "
            f"{settings.patch_baseline_id} set it would get a window but not its baseline. "
            "Use letters, numbers, spaces and _.:/=+-@ only, or set no patchBaselineId"
        )
    return problems


def pattern_problem(group: str, pattern: str, tag_key: str) -> str | None:
    """Why ``group`` is outside the stack's allow-list ``GroupNamePattern`` (a whole-name match);
    None when it is inside, or there is no list."""
    if not pattern or re.fullmatch(pattern, group):
        return None
    return f"{tag_key} value does not match the stack's GroupNamePattern {pattern!r}"
