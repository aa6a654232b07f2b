"""Parsing helpers shared by the subcommands (not a command itself)."""

from __future__ import annotations

import math


def parse_numbers(text: str, name: str) -> list[float]:
    """``"0,0.5,1"`` -> ``[0.0, 0.5, 1.0]``; a ValueError names ``name`` otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"{name} must be comma-separated numbers, got {text!r}"
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be comma-separated finite numbers, got {text!r}")
    return values
