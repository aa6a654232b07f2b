"""Sparsity calibration: turn a knob until a trained SAE's held-out L0 hits a target.

Each probe is a full training run (same steps as the final SAE), so a probe that
lands within tolerance *is* the final SAE. Steps are secant steps on
``log L0`` against ``log knob`` (L0 is close to a power law in lambda and in k),
started from a prior slope, limited to a factor of 4 per step, and replaced by
interpolation between the two ends once the target is bracketed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_LOG_STEP = math.log(4.0)


@dataclass
class Calibration(Generic[T]):
    """Outcome of ``calibrate``: the run closest to the target and every probe."""

    knob: float
    l0: float
    result: T
    hit: bool
    trace: list[tuple[float, float]] = field(default_factory=list)
    """(knob, l0) of every probe, in order."""


def calibrate(
    run: Callable[[float], tuple[float, T]],
    target_l0: float,
    initial_knob: float,
    slope: float,
    tolerance: float,
    max_runs: int,
    knob_range: tuple[float, float] = (1e-6, 1e6),
    integer: bool = False,
) -> Calibration[T]:
    """Probe ``run(knob) -> (l0, result)`` until ``|l0 / target_l0 - 1| <= tolerance``.

    Args:
        run: Trains and measures one SAE at ``knob``.
        target_l0: The L0 to hit (> 0).
        initial_knob: First knob to try (inside ``knob_range``).
        slope: Prior ``d log L0 / d log knob``: about -0.5 for an L1 coefficient,
            1 for k. Its sign says which way the knob moves L0.
        tolerance: Accepted relative L0 error, in (0, 1).
        max_runs: Probes allowed (>= 1); the closest probe is returned if none hits.
        knob_range: Bounds the knob is clipped to.
        integer: Probe integer knobs only (TopK's k): a step that rounds to a knob
            already tried moves one integer in the needed direction instead, and the
            search stops when that one was tried too.
    """
    if target_l0 <= 0:
        raise ValueError(f"target_l0 must be > 0, got {target_l0!r}")
    if slope == 0:
        raise ValueError("slope must be non-zero: its sign says which way L0 moves")
    if max_runs < 1:
        raise ValueError(f"max_runs must be >= 1, got {max_runs!r}")
    lo_u, hi_u = (math.log(b) for b in knob_range)
    goal = math.log(target_l0)
    u = min(max(math.log(initial_knob), lo_u), hi_u)
    points: list[tuple[float, float]] = []  # (log knob, log l0)
    trace: list[tuple[float, float]] = []  # (knob, l0) as run
    best: Calibration[T] | None = None
    below: tuple[float, float] | None = None  # latest (u, v) with L0 under the target
    above: tuple[float, float] | None = None  # ... and over it
    if integer:
        u = math.log(max(round(math.exp(u)), 1))
    tried: set[int] = set()
    for _ in range(max_runs):
        knob = float(round(math.exp(u))) if integer else math.exp(u)
        tried.add(round(knob))
        l0, result = run(knob)
        trace.append((knob, l0))
        v = math.log(max(l0, 1e-9))
        points.append((u, v))
        err = abs(l0 / target_l0 - 1)
        if best is None or err < abs(best.l0 / target_l0 - 1):
            best = Calibration(knob, l0, result, err <= tolerance)
        if err <= tolerance:
            break
        if v < goal:
            below = (u, v)
        else:
            above = (u, v)
        if below is not None and above is not None:
            nxt = _inside_bracket(below, above, goal)
        else:
            step_slope = slope
            if len(points) >= 2:
                (u0, v0), (u1, v1) = points[-2], points[-1]
                measured = (v1 - v0) / (u1 - u0) if u1 != u0 else 0.0
                if measured * slope > 0 and abs(measured) > 0.05:
                    step_slope = measured
            step = max(-MAX_LOG_STEP, min(MAX_LOG_STEP, (goal - v) / step_slope))
            nxt = min(max(u + step, lo_u), hi_u)
        if integer:
            up = (v < goal) == (slope > 0)  # does the knob need to grow?
            found = _next_integer(round(knob), nxt, up, tried, knob_range)
            if found is None:
                break
            nxt = math.log(found)
        if nxt == u:
            break
        u = nxt
    assert best is not None
    best.trace = trace
    return best


def _inside_bracket(
    below: tuple[float, float], above: tuple[float, float], goal: float
) -> float:
    """Log-log interpolation between the bracket's ends, kept in its middle 80%.

    The margin makes every probe shrink the bracket by at least 10%, so a noisy or
    curved L0 cannot pin the search to one end (the regula falsi failure mode).
    """
    (ub, vb), (ua, va) = below, above
    frac = 0.5 if va == vb else (goal - vb) / (va - vb)
    frac = min(max(frac, 0.1), 0.9)
    return ub + frac * (ua - ub)


def _next_integer(
    current: int,
    nxt: float,
    up: bool,
    tried: set[int],
    knob_range: tuple[float, float],
) -> int | None:
    """The untried integer nearest ``exp(nxt)``, else the untried neighbour of
    ``current`` on the needed side, else None."""
    lo, hi = max(1, math.ceil(knob_range[0])), math.floor(knob_range[1])
    k = min(max(round(math.exp(nxt)), lo), hi)
    if k not in tried:
        return k
    k = current + (1 if up else -1)
    return k if lo <= k <= hi and k not in tried else None
