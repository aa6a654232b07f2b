"""Typed configs of the ground-truth absorption benchmark, validated on construction.

``SyntheticDataConfig`` describes the synthetic "model" (true features, hierarchy,
firing probabilities); ``AbsorptionBenchConfig`` the contenders, sparsity targets,
seeds and training budget. ``default_config()`` is what ``sae-lens-freq bench
absorption`` runs (under 5 minutes on 2 CPU cores); ``full_config()`` is ``--full``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sae_lens_freq.validation import check_int, check_number

ARCHITECTURES = (
    "standard",
    "freq_weighted",
    "topk",
    "batchtopk",
    "matryoshka_batchtopk",
)
"""SAELens architecture names the benchmark can train, in table order."""


@dataclass(frozen=True)
class SyntheticDataConfig:
    """The synthetic activations: known features, a parent/child hierarchy, frequencies.

    Feature ``i`` is a unit vector in ``R^d_in`` (orthogonalised as far as
    ``d_in`` allows); a sample is the sum of its active features' vectors times
    their magnitudes. Features are laid out as ``n_parents`` blocks of
    ``[parent, child_1..child_c]`` followed by ``n_independent`` features.

    Args:
        n_parents: Parent features (>= 1). Each has ``children_per_parent`` children.
        children_per_parent: Children per parent (>= 2). A child fires only when its
            parent fires, and at most one child of a parent fires (mutually exclusive).
        n_independent: Features outside the hierarchy (>= 0).
        d_in: Dimension of the activations (>= 2).
        parent_firing_prob: Probability a parent fires, in (0, 1).
        child_firing_prob: Probability each child is drawn before the hierarchy is
            applied, in (0, 1); a child then survives only if its parent fired and it
            won the mutual-exclusion draw, so P(some child | parent) is about
            ``1 - (1 - child_firing_prob) ** children_per_parent``.
        independent_prob_max: Firing probability of the most frequent independent
            feature, in (0, 1).
        independent_prob_min: Of the rarest; probabilities are log-spaced between
            the two, in (0, independent_prob_max].
        magnitude_std: Standard deviation of firing magnitudes around their mean of
            1.0 (>= 0).
        model_seed: Seed of the feature directions (>= 0). The synthetic model is the
            same for every contender and training seed.
    """

    n_parents: int = 8
    children_per_parent: int = 3
    n_independent: int = 24
    d_in: int = 32
    parent_firing_prob: float = 0.1
    child_firing_prob: float = 0.25
    independent_prob_max: float = 0.1
    independent_prob_min: float = 0.005
    magnitude_std: float = 0.1
    model_seed: int = 0

    @property
    def n_features(self) -> int:
        return self.n_parents * (1 + self.children_per_parent) + self.n_independent

    def __post_init__(self) -> None:
        check_int("n_parents", self.n_parents, 1)
        check_int("children_per_parent", self.children_per_parent, 2)
        check_int("n_independent", self.n_independent, 0)
        check_int("d_in", self.d_in, 2)
        check_int("model_seed", self.model_seed, 0)
        for name in ("parent_firing_prob", "child_firing_prob", "independent_prob_max"):
            check_number(name, getattr(self, name), "(0, 1)", lambda v: 0 < v < 1)
        check_number(
            "independent_prob_min",
            self.independent_prob_min,
            f"(0, independent_prob_max={self.independent_prob_max}]",
            lambda v: 0 < v <= self.independent_prob_max,
        )
        check_number("magnitude_std", self.magnitude_std, "[0, inf)", lambda v: v >= 0)


@dataclass(frozen=True)
class AbsorptionBenchConfig:
    """What to train and how: contenders, sparsity targets, seeds, budget.

    Args:
        data: The synthetic activations.
        contenders: Architectures to train, from ``ARCHITECTURES``. ``freq_weighted``
            expands to one contender per ``freq_coefficients`` value.
        freq_coefficients: FreqSAE betas (each > -1); the paper's are 0.1 and 0.5,
            negative values penalise frequent features less, 0.0 isolates the
            FreqSAE's unit-norm decoder from its frequency weighting.
        target_l0s: Sparsity targets (each in [1, d_sae]); every contender is
            calibrated to each, in order (each target's calibration starts from
            the previous one's). TopK's k is an integer, so a target between the
            L0s of two adjacent k can be missed; the row then says so.
        seeds: Training seeds (SAE init and sample order), at least 1 value, all >= 0.
        steps: Training steps per run (>= 10); every contender gets the same.
        batch_size: Samples per step (>= 1).
        lr: Adam learning rate (constant, > 0), the same for every contender.
        d_sae: SAE width (>= 2); ``None`` means one latent per true feature.
        freq_warm_up_fraction: FreqSAE's beta warm-up as a fraction of ``steps``, in
            [0, 1]. The paper's 1000 steps assume 100k-step runs; 0.1 keeps the same
            ramp-to-run ratio order for short runs.
        l1_coefficient_guess: The l1_coefficient calibration tries first, at the
            first target L0 (> 0). It changes how many calibration runs are needed,
            not where they end: every run must land within ``l0_tolerance``.
        l0_tolerance: Relative L0 error accepted by calibration, in (0, 1).
        max_calibration_runs: Training runs allowed to hit a target, per contender,
            seed and target (>= 1). The closest run is kept if none hits.
        eval_samples: Held-out samples for every metric (>= 100); the same samples
            for every run.
        eval_seed: Seed of the held-out samples (>= 0), distinct from training seeds.
        cos_threshold: Decoder cosine above which a latent "carries" a true feature's
            direction (absorption metric), in (0, 1).
        workers: Parallel training processes (>= 1), each with one torch thread.
    """

    data: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    contenders: tuple[str, ...] = ARCHITECTURES
    freq_coefficients: tuple[float, ...] = (-0.5, 0.0, 0.1, 0.5)
    target_l0s: tuple[float, ...] = (3.0,)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 2000
    batch_size: int = 512
    lr: float = 3e-3
    d_sae: int | None = None
    freq_warm_up_fraction: float = 0.1
    l1_coefficient_guess: float = 0.12
    l0_tolerance: float = 0.05
    max_calibration_runs: int = 8
    eval_samples: int = 20_000
    eval_seed: int = 12_345
    cos_threshold: float = 0.3
    workers: int = 2

    @property
    def width(self) -> int:
        return self.d_sae if self.d_sae is not None else self.data.n_features

    def __post_init__(self) -> None:
        if not self.contenders:
            raise ValueError(f"contenders must not be empty; allowed: {ARCHITECTURES}")
        for name in self.contenders:
            if name not in ARCHITECTURES:
                raise ValueError(
                    f"contenders: {name!r} is not one of {', '.join(ARCHITECTURES)}"
                )
        if "freq_weighted" in self.contenders and not self.freq_coefficients:
            raise ValueError("freq_coefficients must not be empty with freq_weighted")
        for beta in self.freq_coefficients:
            check_number("freq_coefficients", beta, "(-1, inf)", lambda v: v > -1)
        if self.d_sae is not None:
            check_int("d_sae", self.d_sae, 2)
        if not self.target_l0s:
            raise ValueError("target_l0s must hold at least one value")
        for target in self.target_l0s:
            check_number(
                "target_l0s",
                target,
                f"[1, {self.width}]",
                lambda v: 1 <= v <= self.width,
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(
                f"seeds must be distinct and non-empty, got {self.seeds!r}"
            )
        for seed in self.seeds:
            check_int("seeds", seed, 0)
        check_int("steps", self.steps, 10)
        check_int("batch_size", self.batch_size, 1)
        check_number("lr", self.lr, "(0, inf)", lambda v: v > 0)
        check_number(
            "freq_warm_up_fraction",
            self.freq_warm_up_fraction,
            "[0, 1]",
            lambda v: 0 <= v <= 1,
        )
        check_number(
            "l1_coefficient_guess",
            self.l1_coefficient_guess,
            "(0, inf)",
            lambda v: v > 0,
        )
        check_number("l0_tolerance", self.l0_tolerance, "(0, 1)", lambda v: 0 < v < 1)
        check_int("max_calibration_runs", self.max_calibration_runs, 1)
        check_int("eval_samples", self.eval_samples, 100)
        check_int("eval_seed", self.eval_seed, 0)
        check_number("cos_threshold", self.cos_threshold, "(0, 1)", lambda v: 0 < v < 1)
        check_int("workers", self.workers, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_config(**overrides: Any) -> AbsorptionBenchConfig:
    """The default job: 8 contenders x 3 seeds at L0 3, under 5 minutes on 2 cores."""
    return AbsorptionBenchConfig(**overrides)


def full_config(**overrides: Any) -> AbsorptionBenchConfig:
    """``--full``: the default data and seeds with a fifth beta (2.0) and an
    absorption-vs-L0 curve over three targets (3, 4, 6); ~10-30 min on 2 cores."""
    settings: dict[str, Any] = {
        "freq_coefficients": (-0.5, 0.0, 0.1, 0.5, 2.0),
        "target_l0s": (3.0, 4.0, 6.0),
    }
    settings.update(overrides)
    return AbsorptionBenchConfig(**settings)
