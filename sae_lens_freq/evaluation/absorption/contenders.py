"""The contenders: SAELens training SAEs trained by SAELens's ``SAETrainer``.

Every contender gets the same synthetic batches for a given seed (``SeededBatches``),
the same number of steps, batch size and Adam optimiser with a constant learning rate;
only the architecture and its sparsity knob (``l1_coefficient`` or ``k``) differ.
After training each SAE is exported with ``save_inference_model`` and reloaded with
``SAE.load_from_disk``, so every metric is measured on the SAE a user would load
(a BatchTopK SAE, for instance, as the JumpReLU SAE it exports to).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from sae_lens import SAE
from sae_lens.config import LoggingConfig, SAETrainerConfig
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from sae_lens.saes.matryoshka_batchtopk_sae import (
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
)
from sae_lens.saes.sae import TrainingSAE
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.training import sae_trainer
from tqdm.auto import tqdm

from sae_lens_freq.evaluation.absorption.config import AbsorptionBenchConfig
from sae_lens_freq.evaluation.absorption.data import GroundTruth, SeededBatches
from sae_lens_freq.saes.freq_weighted_sae import (
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
)

L1_ARCHITECTURES = ("standard", "freq_weighted")
DATA_SEED_OFFSET = 1_000_003
"""Training batches for seed ``s`` come from stream ``s + DATA_SEED_OFFSET``."""


@dataclass(frozen=True)
class Contender:
    """One SAE recipe: a SAELens architecture (and, for FreqSAE, its beta)."""

    architecture: str
    freq_coefficient: float | None = None

    @property
    def label(self) -> str:
        if self.freq_coefficient is None:
            return self.architecture
        return f"{self.architecture} (beta={self.freq_coefficient:g})"

    @property
    def knob(self) -> str:
        """The sparsity knob calibration turns: ``l1_coefficient`` or ``k``."""
        return "l1_coefficient" if self.architecture in L1_ARCHITECTURES else "k"

    @property
    def slope_prior(self) -> float:
        """Rough ``d log L0 / d log knob``: L0 falls as lambda grows, rises with k."""
        return -0.5 if self.knob == "l1_coefficient" else 1.0

    @property
    def integer_knob(self) -> bool:
        """TopK's k is an integer; BatchTopK's k is a mean, any positive number."""
        return self.architecture == "topk"

    def start_knob(
        self,
        target_l0: float,
        l1_guess: float,
        previous: tuple[float, float] | None = None,
    ) -> float:
        """Where calibration starts: from ``previous`` (target, calibrated knob) of
        another target along ``slope_prior``, else ``l1_guess`` or ``k = target``."""
        if previous is not None:
            old_target, old_knob = previous
            return old_knob * (target_l0 / old_target) ** (1 / self.slope_prior)
        return l1_guess if self.knob == "l1_coefficient" else target_l0


def contenders_for(cfg: AbsorptionBenchConfig) -> list[Contender]:
    """Contenders in table order; ``freq_weighted`` expands over ``freq_coefficients``."""
    out: list[Contender] = []
    for arch in cfg.contenders:
        if arch == "freq_weighted":
            out += [Contender(arch, float(b)) for b in cfg.freq_coefficients]
        else:
            out.append(Contender(arch))
    return out


def build_training_sae(
    cfg: AbsorptionBenchConfig, contender: Contender, knob: float
) -> TrainingSAE[Any]:
    d_in, d_sae = cfg.data.d_in, cfg.width
    arch = contender.architecture
    if arch == "standard":
        return StandardTrainingSAE(
            StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=knob)
        )
    if arch == "freq_weighted":
        assert contender.freq_coefficient is not None
        return FreqWeightedTrainingSAE(
            FreqWeightedTrainingSAEConfig(
                d_in=d_in,
                d_sae=d_sae,
                l1_coefficient=knob,
                freq_coefficient=contender.freq_coefficient,
                freq_warm_up_steps=round(cfg.freq_warm_up_fraction * cfg.steps),
            )
        )
    if arch == "topk":
        return TopKTrainingSAE(
            TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=round(knob))
        )
    if arch == "batchtopk":
        return BatchTopKTrainingSAE(
            BatchTopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=knob)
        )
    if arch == "matryoshka_batchtopk":
        widths = sorted({max(1, d_sae // 4), max(2, d_sae // 2), d_sae})
        return MatryoshkaBatchTopKTrainingSAE(
            MatryoshkaBatchTopKTrainingSAEConfig(
                d_in=d_in, d_sae=d_sae, k=knob, matryoshka_widths=widths
            )
        )
    raise ValueError(f"architecture {arch!r} is not a benchmark contender")


def trainer_config(cfg: AbsorptionBenchConfig) -> SAETrainerConfig:
    """The one trainer setup every contender shares (Adam, constant lr, no wandb)."""
    return SAETrainerConfig(
        total_training_samples=cfg.steps * cfg.batch_size,
        train_batch_size_samples=cfg.batch_size,
        lr=cfg.lr,
        lr_end=cfg.lr,
        lr_scheduler_name="constant",
        adam_beta1=0.9,
        adam_beta2=0.999,
        device="cpu",
        dead_feature_window=min(1000, cfg.steps // 2),
        feature_sampling_window=2000,
        n_checkpoints=0,
        checkpoint_path=None,
        save_final_checkpoint=False,
        logger=LoggingConfig(log_to_wandb=False),
    )


def train_sae(
    cfg: AbsorptionBenchConfig,
    truth: GroundTruth,
    contender: Contender,
    seed: int,
    knob: float,
) -> SAE[Any]:
    """Train one contender with ``SAETrainer`` and return its exported inference SAE."""
    torch.manual_seed(seed)
    sae = build_training_sae(cfg, contender, knob)
    batches = SeededBatches(truth, cfg.batch_size, seed + DATA_SEED_OFFSET)
    with _quiet_trainer():
        sae_trainer.SAETrainer(
            cfg=trainer_config(cfg), sae=sae, data_provider=batches
        ).fit()
    with tempfile.TemporaryDirectory() as folder:
        sae.save_inference_model(folder)
        return SAE.load_from_disk(folder)


@contextlib.contextmanager
def _quiet_trainer() -> Iterator[None]:
    # SAETrainer.fit opens its own tqdm bar per run; the benchmark shows one bar
    # over all runs instead, so the trainer's is silenced for the duration.
    original = sae_trainer.tqdm
    sae_trainer.tqdm = functools.partial(tqdm, disable=True)  # type: ignore[assignment]
    try:
        yield
    finally:
        sae_trainer.tqdm = original  # type: ignore[assignment]


class Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
