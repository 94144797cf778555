import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.naming import (
    group_slug,
    group_tag_value,
    legacy_group_slug,
    legacy_group_tag_value,
    legacy_names,
    target_name,
    task_name,
    window_name,
)

SSM_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")


def test_safe_values_are_kept_as_they_are() -> None:
    assert group_slug("web") == "web"
    assert group_slug("Web-Prod_1.a") == "Web-Prod_1.a"
    assert window_name("web") == "TagPatch-web"
    assert window_name("web", scan=True) == "TagPatch-web-scan"


@pytest.mark.parametrize(
    ("value", "readable"),
    [
        ("a b", "a-b-"),
        ("Ünïcödé", "Unicode-"),
        ("日本語", "g-"),
        ("../etc", "etc-"),
        ("-lead", "lead-"),
        ("", "g-"),
    ],
)
def test_unsafe_values_get_a_readable_part_and_a_hash(value: str, readable: str) -> None:
    slug = group_slug(value)
    assert slug.startswith(readable)
    assert re.fullmatch(r".*-[0-9a-f]{10}", slug)


def test_case_and_punctuation_variants_do_not_collide() -> None:
    values = ["web", "Web", "web ", "web!", "web?", "wéb", "web" + "x" * 70, "web" + "y" * 70]
    assert len({group_slug(value) for value in values}) == len(values)


@given(st.text(max_size=256))
def test_every_value_maps_to_valid_ssm_names(value: str) -> None:
    for name in (window_name(value), window_name(value, scan=True), target_name(value), task_name(value)):
        assert SSM_NAME.match(name), name
    assert group_slug(value) == group_slug(value)  # deterministic


def test_a_safe_value_shaped_like_a_hashed_slug_is_hashed_too() -> None:
    # "Prod-DB-90a2e279c2" is "Prod DB!"'s slug: used as is, it took over that group's window.
    victim = group_slug("Prod DB!")
    assert victim == "Prod-DB-90a2e279c2"
    assert group_slug(victim) != victim
    assert group_slug("g-0123456789") != "g-0123456789"
    assert group_slug("web-2024") == "web-2024"  # not hash-shaped: kept as it is


@given(st.text(max_size=80))
def test_a_value_kept_as_is_never_equals_a_hashed_slug(value: str) -> None:
    slug = group_slug(value)
    hashed = re.fullmatch(r".*-[0-9a-f]{10}", slug) is not None
    assert (slug == value) != hashed


def test_group_tag_value_is_one_per_group() -> None:
    assert group_tag_value("web prod") == "web prod"
    assert group_tag_value("Prod DB!") == "Prod-DB-90a2e279c2"
    assert group_tag_value("Prod-DB-90a2e279c2") != "Prod-DB-90a2e279c2"


def test_naming_rule_1_is_kept_for_upgrades() -> None:
    # What TagPatch at 789e50b named and tagged (naming.py and spec.py of that commit)
    assert legacy_group_slug("web-2024061501") == "web-2024061501"
    assert group_slug("web-2024061501") == "web-2024061501-43f424716d"
    assert legacy_group_slug("Prod DB!") == group_slug("Prod DB!") == "Prod-DB-90a2e279c2"
    assert legacy_group_tag_value("web prod-2024061501") == "web prod-2024061501"
    assert group_tag_value("web prod-2024061501") == group_slug("web prod-2024061501")
    assert legacy_group_tag_value("semi;colon") == legacy_group_slug("semi;colon")
    assert legacy_names("web-2024061501", scan=True) == (
        "TagPatch-web-2024061501-scan",
        "TagPatch-web-2024061501-target-scan",
        "TagPatch-web-2024061501-scan",
    )
