"""Nested metric dicts (SAELens's and SAEBench's grouped results) as flat rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten(values: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}`` (``sep`` joins the keys)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            for inner, leaf in flatten(value, sep).items():
                flat[f"{key}{sep}{inner}"] = leaf
        else:
            flat[key] = value
    return flat
