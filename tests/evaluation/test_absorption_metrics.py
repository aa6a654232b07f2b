"""Absorption metrics on hand-built cases with known answers, and against independent
computations; calibration, config validation and the synthetic data's structure."""

from __future__ import annotations

import math

import pytest
import torch
from sae_lens.evals import ExplainedVarianceCalculator
from sae_lens.synthetic import DeadLatentsCalculator, L0Calculator

from sae_lens_freq.evaluation.absorption import metrics
from sae_lens_freq.evaluation.absorption.calibrate import calibrate
from sae_lens_freq.evaluation.absorption.config import (
    AbsorptionBenchConfig,
    SyntheticDataConfig,
)
from sae_lens_freq.evaluation.absorption.data import SeededBatches, build_ground_truth

# True features: 0 parent, 1 and 2 its children, 3 independent; axis-aligned in R^4.
DIRECTIONS = torch.eye(4)
HIERARCHY = {0: [1, 2]}
R2 = 1 / math.sqrt(2)


def feature_acts(*active: tuple[int, ...]) -> torch.Tensor:
    acts = torch.zeros(len(active), 4)
    for row, features in enumerate(active):
        acts[row, list(features)] = 1.0
    return acts


def absorbed_decoder() -> torch.Tensor:
    """Latent 0 = parent, latent 1 = child 1 + parent (absorbing), latent 2 = child 2,
    latent 3 = independent, latent 4 = a direction no sample uses (dead)."""
    return torch.tensor(
        [[1, 0, 0, 0], [R2, R2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5]]
    )


def test_perfectly_absorbed_parent_scores_one() -> None:
    acts = feature_acts((0, 1), (0, 1), (0,))
    # parent+child: only the absorbing latent fires; parent alone: parent latent fires
    latents = torch.tensor([[0, 1.4, 0, 0, 0], [0, 1.4, 0, 0, 0], [1.0, 0, 0, 0, 0]])
    stats = metrics.absorption_stats(
        latents, acts, absorbed_decoder(), DIRECTIONS, HIERARCHY
    )
    assert stats.absorption_rate == 1.0
    assert stats.parent_fnr_with_child == 1.0
    assert stats.parent_fnr_without_child == 0.0
    assert stats.n_parent_child == 2


def test_clean_parent_scores_zero() -> None:
    decoder = torch.eye(5, 4)  # latent i = feature i, latent 4 dead (zero row)
    decoder[4] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    acts = feature_acts((0, 1), (0, 2), (0,))
    latents = torch.tensor([[1.0, 1, 0, 0, 0], [1.0, 0, 1, 0, 0], [1.0, 0, 0, 0, 0]])
    stats = metrics.absorption_stats(latents, acts, decoder, DIRECTIONS, HIERARCHY)
    assert stats.absorption_rate == 0.0
    assert stats.parent_fnr_with_child == 0.0
    assert stats.parent_fnr_without_child == 0.0
    assert metrics.child_parent_cosine(decoder, DIRECTIONS, HIERARCHY) == 0.0


def test_silent_parent_without_absorbing_latent_is_a_miss_not_absorption() -> None:
    # parent latent silent, child 2's latent (clean, no parent direction) fires
    acts = feature_acts((0, 2), (3,))
    latents = torch.tensor([[0, 0, 1.0, 0, 0], [0, 0, 0, 1.0, 0]])
    stats = metrics.absorption_stats(
        latents, acts, absorbed_decoder(), DIRECTIONS, HIERARCHY
    )
    assert stats.absorption_rate == 0.0
    assert stats.parent_fnr_with_child == 1.0
    assert math.isnan(stats.parent_fnr_without_child)  # no parent-alone sample


def test_mixed_case_and_dead_latent() -> None:
    acts = feature_acts((0, 1), (0, 2), (0,), (3,))
    latents = torch.tensor(
        [[0, 1.4, 0, 0, 0], [1.0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1.0, 0]]
    )
    decoder = absorbed_decoder()
    stats = metrics.absorption_stats(latents, acts, decoder, DIRECTIONS, HIERARCHY)
    assert stats.absorption_rate == 0.5
    assert stats.parent_fnr_with_child == 0.5
    assert stats.parent_fnr_without_child == 1.0
    # child 1's latent carries the parent at cos 1/sqrt(2), child 2's not at all
    assert metrics.child_parent_cosine(decoder, DIRECTIONS, HIERARCHY) == pytest.approx(
        R2 / 2
    )
    assert metrics.dead_latents(latents) == 1  # latent 4 never fires
    assert metrics.mean_l0(latents) == pytest.approx(4 / 4)


def test_dead_latent_counted_only_when_it_never_fires() -> None:
    latents = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, -0.5]])
    assert metrics.dead_latents(latents) == 1


def brute_force_absorption(
    latents: torch.Tensor,
    acts: torch.Tensor,
    decoder: torch.Tensor,
    directions: torch.Tensor,
    hierarchy: dict[int, list[int]],
    threshold: float,
) -> float:
    """Per-sample loops over plain Python floats: the definition, written out again."""
    rows = [[float(v) for v in r] for r in decoder]
    dirs = [[float(v) for v in d] for d in directions]

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    events = absorbed = 0
    for parent, children in hierarchy.items():
        scores = [cos(r, dirs[parent]) for r in rows]
        p_lat = max(range(len(rows)), key=lambda j: scores[j])
        for child in children:
            carriers = [
                j
                for j, r in enumerate(rows)
                if j != p_lat
                and cos(r, dirs[child]) >= threshold
                and cos(r, dirs[parent]) >= threshold
            ]
            for s in range(acts.shape[0]):
                if acts[s, parent] > 0 and acts[s, child] > 0:
                    events += 1
                    silent = latents[s, p_lat] == 0
                    if silent and any(latents[s, j] != 0 for j in carriers):
                        absorbed += 1
    return absorbed / events


def test_absorption_matches_brute_force_on_random_data() -> None:
    gen = torch.Generator().manual_seed(0)
    truth = build_ground_truth(
        SyntheticDataConfig(n_parents=3, n_independent=4, d_in=12)
    )
    acts, _ = truth.sample(300, seed=1)
    # a decoder mixing children with their parents, and random latent firing
    decoder = truth.directions.clone()
    decoder[1] += 0.9 * decoder[0]
    decoder[5] += 1.2 * decoder[4]
    latents = torch.rand(300, decoder.shape[0], generator=gen) * (
        torch.rand(300, decoder.shape[0], generator=gen) > 0.6
    )
    got = metrics.absorption_stats(
        latents, acts, decoder, truth.directions, truth.hierarchy, 0.3
    ).absorption_rate
    want = brute_force_absorption(
        latents, acts, decoder, truth.directions, truth.hierarchy, 0.3
    )
    assert got == pytest.approx(want) and 0 < got < 1


def test_reconstruction_metrics_match_sae_lens_calculators() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(500, 8, generator=gen) + 3.0
    x_hat = x + 0.3 * torch.randn(500, 8, generator=gen)
    ev = ExplainedVarianceCalculator()
    ev.add_batch(x_hat, x)
    assert metrics.explained_variance(x, x_hat) == pytest.approx(ev.compute(), rel=1e-6)
    latents = torch.relu(torch.randn(500, 16, generator=gen) - 1.0)
    latents[:, 3] = 0
    l0, dead = L0Calculator(), DeadLatentsCalculator(16)
    l0.add_batch(latents)
    dead.add_batch(latents)
    assert metrics.mean_l0(latents) == pytest.approx(l0.compute())
    assert metrics.dead_latents(latents) == dead.compute() == 1


def test_absorption_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError, match="cos_threshold"):
        metrics.absorption_stats(
            torch.zeros(1, 5),
            feature_acts((0,)),
            absorbed_decoder(),
            DIRECTIONS,
            HIERARCHY,
            cos_threshold=1.5,
        )


@pytest.mark.parametrize(
    ("slope", "factor", "start"),
    [(-0.5, 0.8, 0.5), (-0.5, 0.8, 0.01), (1.0, 0.8, 9.0), (-0.5, 2.4, 0.12)],
)
def test_calibrate_hits_a_power_law_target(
    slope: float, factor: float, start: float
) -> None:
    # the "SAE": L0 = 3 * (knob / 0.1) ** (factor * prior slope); factor 2.4 is a
    # curve much steeper than the prior, as short training runs give
    true_slope = factor * slope
    calls: list[float] = []

    def run(knob: float) -> tuple[float, str]:
        calls.append(knob)
        return 3.0 * (knob / 0.1) ** true_slope, f"sae@{knob}"

    cal = calibrate(run, 5.0, start, slope, tolerance=0.02, max_runs=8)
    assert cal.hit and abs(cal.l0 / 5.0 - 1) <= 0.02
    assert cal.result == f"sae@{cal.knob}" and len(cal.trace) == len(calls) <= 8


def test_calibrate_keeps_the_closest_run_when_none_hits() -> None:
    cal = calibrate(lambda k: (10.0 + k, k), 5.0, 1.0, 1.0, tolerance=0.01, max_runs=3)
    assert not cal.hit
    assert cal.l0 == min(l0 for _, l0 in cal.trace)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"steps": 5}, "steps"),
        ({"contenders": ("standard", "gated")}, "contenders"),
        ({"freq_coefficients": (-1.0,)}, "freq_coefficients"),
        ({"target_l0s": (0.5,)}, "target_l0s"),
        ({"seeds": (0, 0)}, "seeds"),
        ({"l0_tolerance": 0.0}, "l0_tolerance"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AbsorptionBenchConfig(**kwargs)  # type: ignore[arg-type]


def test_data_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"independent_prob_min.*got 0.5"):
        SyntheticDataConfig(independent_prob_max=0.1, independent_prob_min=0.5)


def test_children_fire_only_with_parent_and_exclusively() -> None:
    truth = build_ground_truth(SyntheticDataConfig())
    acts, x = truth.sample(20_000, seed=3)
    for parent, children in truth.hierarchy.items():
        kids = acts[:, children] > 0
        assert not (kids.any(dim=1) & (acts[:, parent] == 0)).any()
        assert kids.sum(dim=1).max() <= 1
        assert kids.any(dim=1).float().mean() > 0.01  # children do fire
    assert torch.allclose(x, acts @ truth.directions, atol=1e-5)


def test_seeded_batches_ignore_global_rng() -> None:
    truth = build_ground_truth(SyntheticDataConfig())
    a, b = SeededBatches(truth, 64, seed=7), SeededBatches(truth, 64, seed=7)
    first = next(a)
    torch.rand(1000)  # other code consuming the global RNG in between
    assert torch.equal(first, next(b))
    assert torch.equal(next(a), next(b))
    assert not torch.equal(next(SeededBatches(truth, 64, seed=8)), first)


def test_integer_calibration_for_topk_whose_l0_falls_short_of_k() -> None:
    # TopK's ReLU drops non-positive picks: L0 = 0.75 k here, so k = 6 misses 6
    cal = calibrate(lambda k: (0.75 * k, k), 6.0, 6.0, 1.0, 0.05, 8, (0.5, 56), True)
    assert cal.hit and cal.knob == 8.0 and all(k == int(k) for k, _ in cal.trace)


def test_integer_calibration_stops_between_adjacent_integers() -> None:
    # L0 = 2k: target 5 lies between k = 2 and k = 3, neither within 5%
    cal = calibrate(lambda k: (2.0 * k, k), 5.0, 2.0, 1.0, 0.05, 8, (0.5, 56), True)
    assert not cal.hit and sorted(k for k, _ in cal.trace) == [2.0, 3.0]
