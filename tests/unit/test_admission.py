import pytest

from tagpatch.naming import ssm_text_ok
from tagpatch.reconciler.admission import RESERVED_PREFIX, name_problems
from tests.support.settings import default_settings

WITH_BASELINE = default_settings().overridden({"patchBaselineId": "pb-0123456789abcdef0"})


@pytest.mark.parametrize("text", ["web", "web prod", "Ünïcödé", "日本語", "a/b:c=d+e@f", "٣٤", "\u3000", ""])
def test_text_ssm_accepts(text: str) -> None:
    assert ssm_text_ok(text)


@pytest.mark.parametrize("text", ["#", "%", '"', "'", "<", ">", "\\", "\x00", "\t", "\u200b", "\u200f", "😀"])
def test_text_ssm_refuses(text: str) -> None:
    assert not ssm_text_ok(text)


def test_a_name_is_checked_against_the_patch_group_rule_only_when_a_baseline_is_set() -> None:
    assert name_problems("web#1", default_settings(), "PatchGroup") == []
    [reason] = name_problems("web#1", WITH_BASELINE, "PatchGroup")
    assert "U+0023 (NUMBER SIGN)" in reason and "pb-0123456789abcdef0" in reason


def test_reserved_and_overlong_names_are_refused_whatever_the_settings() -> None:
    assert name_problems(f"{RESERVED_PREFIX}slug:web", default_settings(), "PatchGroup")
    assert name_problems("x" * 257, default_settings(), "PatchGroup")
    assert name_problems("x" * 256, WITH_BASELINE, "PatchGroup") == []


def test_the_groups_table_reserves_the_prefix_the_reconciler_refuses() -> None:
    from tagpatch.adapters.groups import CLAIMS_KEY
    from tagpatch.adapters.groups import RESERVED_PREFIX as TABLE_PREFIX

    assert TABLE_PREFIX == RESERVED_PREFIX and CLAIMS_KEY.startswith(RESERVED_PREFIX)
