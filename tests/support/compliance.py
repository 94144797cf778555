"""Helpers for reading the compliance reporter's table in tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def count_items(items: Iterable[dict[str, Any]], prefix: str) -> int:
    return sum(1 for item in items if str(item["sk"]).startswith(prefix))
