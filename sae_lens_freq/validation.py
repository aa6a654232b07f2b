"""Early, explicit validation of config values: errors name the field, the value and
what is allowed, so a bad setting fails at construction, not as a NaN or a deep
traceback mid-run."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def check_int(name: str, value: Any, minimum: int) -> None:
    """``value`` must be an ``int`` (not a ``bool``) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_number(
    name: str, value: Any, allowed: str, ok: Callable[[float], bool]
) -> None:
    """``value`` must be a finite real number with ``ok(value)``; ``allowed`` says
    which, for the message (e.g. ``"[0, 1)"``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not ok(value)
    ):
        raise ValueError(f"{name} must be a finite number in {allowed}, got {value!r}")
