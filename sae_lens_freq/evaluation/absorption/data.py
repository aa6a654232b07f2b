"""The synthetic model: true feature directions, their hierarchy, and batches of samples.

Built from ``sae_lens.synthetic``: a ``FeatureDictionary`` (orthogonalised unit
directions), an ``ActivationGenerator`` with per-feature firing probabilities, and a
``hierarchy_modifier`` over ``HierarchyNode`` trees (children gated by their parent,
mutually exclusive among siblings).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from sae_lens.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    HierarchyNode,
    hierarchy_modifier,
)

from sae_lens_freq.evaluation.absorption.config import SyntheticDataConfig


@dataclass
class GroundTruth:
    """A synthetic model whose features and parent -> children structure are known.

    Attributes:
        feature_dict: Maps feature activations ``(n, n_features)`` to samples
            ``(n, d_in)``; ``feature_dict.feature_vectors`` are the true directions.
        generator: Draws feature activations with the hierarchy applied.
        hierarchy: Parent feature index -> its children's feature indices.
    """

    feature_dict: FeatureDictionary
    generator: ActivationGenerator
    hierarchy: dict[int, list[int]]

    @property
    def directions(self) -> torch.Tensor:
        """True feature directions, ``(n_features, d_in)``, unit norm."""
        return self.feature_dict.feature_vectors.detach()

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples drawn from their own RNG stream: (feature acts, activations)."""
        return SeededBatches(self, n, seed).next_pair()


def firing_probabilities(cfg: SyntheticDataConfig) -> torch.Tensor:
    """Per-feature firing probability before the hierarchy is applied."""
    block = [cfg.parent_firing_prob] + [cfg.child_firing_prob] * cfg.children_per_parent
    independent = torch.logspace(
        torch.log10(torch.tensor(cfg.independent_prob_max)).item(),
        torch.log10(torch.tensor(cfg.independent_prob_min)).item(),
        cfg.n_independent,
    )
    return torch.cat([torch.tensor(block * cfg.n_parents), independent]).float()


def build_hierarchy(cfg: SyntheticDataConfig) -> dict[int, list[int]]:
    """Parent index -> children indices, for the ``[parent, children...]`` block layout."""
    size = 1 + cfg.children_per_parent
    return {
        p * size: [p * size + 1 + c for c in range(cfg.children_per_parent)]
        for p in range(cfg.n_parents)
    }


def build_ground_truth(cfg: SyntheticDataConfig) -> GroundTruth:
    """Deterministic in ``cfg`` (directions seeded by ``cfg.model_seed``)."""
    hierarchy = build_hierarchy(cfg)
    roots = [
        HierarchyNode(
            parent,
            children=[HierarchyNode(child) for child in children],
            mutually_exclusive_children=True,
        )
        for parent, children in hierarchy.items()
    ]
    with torch.random.fork_rng(devices=[]):
        feature_dict = FeatureDictionary(cfg.n_features, cfg.d_in, seed=cfg.model_seed)
    feature_dict.eval()
    feature_dict.requires_grad_(False)
    generator = ActivationGenerator(
        cfg.n_features,
        firing_probabilities(cfg),
        std_firing_magnitudes=cfg.magnitude_std,
        mean_firing_magnitudes=1.0,
        modify_activations=hierarchy_modifier(roots),
    )
    return GroundTruth(feature_dict, generator, hierarchy)


class SeededBatches(Iterator[torch.Tensor]):
    """Endless batches of activations from a private RNG stream.

    ``ActivationGenerator`` draws from torch's global RNG; this swaps in its own state
    for each batch, so the sample order depends only on ``seed``: every contender
    trained with one seed sees exactly the same batches, however much randomness its
    own initialisation or training step consumes.
    """

    def __init__(self, truth: GroundTruth, batch_size: int, seed: int):
        self.truth = truth
        self.batch_size = batch_size
        self._state = torch.Generator().manual_seed(seed).get_state()

    @torch.no_grad()
    def next_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._state)
            feature_acts = self.truth.generator.sample(self.batch_size)
            self._state = torch.get_rng_state()
        return feature_acts, self.truth.feature_dict(feature_acts)

    def __iter__(self) -> SeededBatches:
        return self

    def __next__(self) -> torch.Tensor:
        return self.next_pair()[1]
