"""Absorption and reconstruction metrics against ground truth, as pure tensor functions.

Shapes: ``latent_acts`` ``(n, d_sae)`` (an SAE's feature activations), ``feature_acts``
``(n, n_features)`` (the true ones), ``decoder`` ``(d_sae, d_in)`` (SAE ``W_dec``),
``directions`` ``(n_features, d_in)`` (true feature vectors), ``hierarchy`` parent
feature index -> children feature indices. A latent *fires* when its activation is
non-zero; a true feature is *active* when its activation is > 0.

The *latent matched to* a true feature is the latent whose decoder row has the
highest cosine with that feature's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AbsorptionStats:
    """Absorption of parents by their children, pooled over all parent/child pairs.

    Attributes:
        absorption_rate: Over samples where a parent and one of its children are both
            active, the fraction where the parent's matched latent does not fire while
            an *absorbing* latent does: a latent other than the parent's whose decoder
            has cosine >= ``cos_threshold`` with both the child's and the parent's
            direction. NaN when no such sample exists.
        parent_fnr_with_child: Over samples where a parent and one of its children are
            active, the fraction where the parent's matched latent does not fire.
        parent_fnr_without_child: Over samples where a parent is active and none of
            its children is, the fraction where the parent's matched latent does not
            fire.
        n_parent_child: Number of (sample, parent, child) events behind the first two.
    """

    absorption_rate: float
    parent_fnr_with_child: float
    parent_fnr_without_child: float
    n_parent_child: int


def decoder_cosines(decoder: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Cosine of every decoder row with every true direction: ``(d_sae, n_features)``."""
    dec = decoder / decoder.norm(dim=1, keepdim=True).clamp(min=1e-12)
    dirs = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return dec @ dirs.T


def matched_latents(decoder: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Index of the latent matched to each true feature (best decoder cosine)."""
    return decoder_cosines(decoder, directions).argmax(dim=0)


@torch.no_grad()
def absorption_stats(
    latent_acts: torch.Tensor,
    feature_acts: torch.Tensor,
    decoder: torch.Tensor,
    directions: torch.Tensor,
    hierarchy: Mapping[int, Sequence[int]],
    cos_threshold: float = 0.3,
) -> AbsorptionStats:
    """Absorption rate and the parent's false-negative rates; see ``AbsorptionStats``."""
    if not 0 < cos_threshold < 1:
        raise ValueError(f"cos_threshold must be in (0, 1), got {cos_threshold!r}")
    cos = decoder_cosines(decoder, directions)
    match = cos.argmax(dim=0)
    fires = latent_acts != 0
    active = feature_acts > 0
    events = absorbed = missed_with = 0
    alone = missed_alone = 0
    for parent, children in hierarchy.items():
        parent_latent = int(match[parent])
        parent_fires = fires[:, parent_latent]
        parent_on = active[:, parent]
        any_child = active[:, list(children)].any(dim=1)
        without = parent_on & ~any_child
        alone += int(without.sum())
        missed_alone += int((without & ~parent_fires).sum())
        for child in children:
            both = parent_on & active[:, child]
            carriers = (cos[:, child] >= cos_threshold) & (
                cos[:, parent] >= cos_threshold
            )
            carriers[parent_latent] = False
            carrier_fires = fires[:, carriers].any(dim=1)
            events += int(both.sum())
            missed_with += int((both & ~parent_fires).sum())
            absorbed += int((both & ~parent_fires & carrier_fires).sum())
    return AbsorptionStats(
        absorption_rate=_ratio(absorbed, events),
        parent_fnr_with_child=_ratio(missed_with, events),
        parent_fnr_without_child=_ratio(missed_alone, alone),
        n_parent_child=events,
    )


def child_parent_cosine(
    decoder: torch.Tensor,
    directions: torch.Tensor,
    hierarchy: Mapping[int, Sequence[int]],
) -> float:
    """Weight-level absorption: mean over children of cos(child's latent, parent).

    For each child, the cosine between the decoder row of the child's matched latent
    and its parent's true direction, averaged over all children. About
    ``cos(child, parent)`` of the true directions (~0) for clean latents; about 0.7
    when child latents encode ``child + parent`` with equal magnitudes.
    """
    cos = decoder_cosines(decoder, directions)
    match = cos.argmax(dim=0)
    values = [
        float(cos[match[child], parent])
        for parent, children in hierarchy.items()
        for child in children
    ]
    return sum(values) / len(values) if values else math.nan


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over all samples (R^2)."""
    x64, x_hat64 = x.double(), x_hat.double()
    residual = (x64 - x_hat64).pow(2).sum()
    total = (x64 - x64.mean(dim=0)).pow(2).sum()
    return float(1 - residual / total) if total > 0 else math.nan


def mean_l0(latent_acts: torch.Tensor) -> float:
    """Mean number of firing latents per sample."""
    return float((latent_acts != 0).float().sum(dim=1).mean())


def dead_latents(latent_acts: torch.Tensor) -> int:
    """Number of latents that fire on none of the samples."""
    return int((~(latent_acts != 0).any(dim=0)).sum())


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan
