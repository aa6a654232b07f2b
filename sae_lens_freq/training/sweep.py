"""Sweeps: several FreqSAE (and ``standard``) variants from one shared LLM forward pass.

SAELens's ``MultiSAETrainingRunner`` runs the model once per batch and steps one
``SAETrainer`` per SAE (own optimiser, schedulers, scaler, dead-feature counters),
so a k-variant sweep costs one LLM pass instead of k. :class:`SweepRunner` builds
its config from one ordinary training config plus grids over ``freq_coefficient``
(beta), ``freq_ema_decay`` (alpha) and ``l1_coefficient`` (lambda), and gives every
variant what a single run has::

    OUTPUT/<variant>/cfg.json, sae_weights.safetensors, feature_freq.safetensors,
                     sparsity.safetensors, runner_cfg.json, metrics.jsonl

so ``sae-lens-freq report OUTPUT/*/`` and ``sae-lens-freq eval`` work per variant;
``runner_cfg.json`` is the single-run config of that variant. With W&B on, each
variant is its own W&B run (grouped by the sweep's run name). Checkpoints are
SAELens's multi-SAE layout, ``<checkpoint_path>/<n_samples>/<variant>/``, and
``resume_from_checkpoint`` takes such a ``<n_samples>`` folder.

Not in a sweep (SAELens's multi-SAE runner lacks them): cached activations, the
evaluator during training (run ``sae-lens-freq eval`` on the exports), per-variant
``from_pretrained_path``.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import wandb
from sae_lens import LanguageModelSAERunnerConfig, StandardTrainingSAEConfig
from sae_lens.constants import RUNNER_CFG_FILENAME
from sae_lens.multi_sae_training_runner import (
    MultiSAETrainingRunner,
    MultiSAETrainingRunnerConfig,
)
from sae_lens.saes.sae import TrainingSAE, TrainStepOutput
from sae_lens.training.multi_sae_trainer import MultiSAETrainer
from sae_lens.training.sae_trainer import SAETrainer
from transformer_lens.HookedTransformer import HookedRootModule

from sae_lens_freq.saes.freq_weighted_sae import FreqWeightedTrainingSAEConfig
from sae_lens_freq.training.checkpointing import seed_everything
from sae_lens_freq.training.metrics_log import (
    METRICS_FILENAME,
    MetricsLog,
    read_metrics,
)

_NOT_SHARED = {"saes", "hook_names", "hook_head_indices", "evaluator", "logger"}


@dataclass
class SweepConfig:
    """A grid of variants around one training config.

    Args:
        base: The config every variant starts from (model, hook, data, tokens, batch,
            lr, outputs); ``base.sae`` must be a ``FreqWeightedTrainingSAEConfig``.
            Its ``output_path`` becomes the sweep's folder, one subfolder per variant.
        freq_coefficients: beta values to try (each > -1); empty keeps ``base``'s.
        freq_ema_decays: alpha values to try (each in [0, 1)); empty keeps ``base``'s.
        l1_coefficients: lambda values to try (each >= 0); empty keeps ``base``'s.
        include_standard: Also train one SAELens ``standard`` SAE per lambda (same
            d_sae, init and lambda; no frequency weighting, no unit-norm projection).
    """

    base: LanguageModelSAERunnerConfig[Any]
    freq_coefficients: list[float] = field(default_factory=list)
    freq_ema_decays: list[float] = field(default_factory=list)
    l1_coefficients: list[float] = field(default_factory=list)
    include_standard: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base.sae, FreqWeightedTrainingSAEConfig):
            raise ValueError(
                f"base.sae must be a FreqWeightedTrainingSAEConfig, got "
                f"{type(self.base.sae).__name__}"
            )
        if self.base.use_cached_activations:
            raise ValueError(
                "base.use_cached_activations=True is not supported in a sweep "
                "(SAELens's multi-SAE runner reads live activations); allowed: False"
            )
        if self.base.output_path is None:
            raise ValueError(
                "base.output_path must be a folder for the variants, got None"
            )
        for name in ("freq_coefficients", "freq_ema_decays", "l1_coefficients"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values: {values!r}")
        # Building every variant validates each value against its allowed range.
        if len(self.variants()) < 1:
            raise ValueError("the sweep has no variants")

    def variants(self) -> dict[str, LanguageModelSAERunnerConfig[Any]]:
        """Variant name -> its single-run config (output in ``base.output_path/name``)."""
        sae = self.base.sae
        assert isinstance(sae, FreqWeightedTrainingSAEConfig)
        betas = self.freq_coefficients or [sae.freq_coefficient]
        alphas = self.freq_ema_decays or [sae.freq_ema_decay]
        lambdas = self.l1_coefficients or [sae.l1_coefficient]
        saes: dict[str, Any] = {}
        for beta, alpha, lam in itertools.product(betas, alphas, lambdas):
            name = f"freq_b{beta:g}_a{alpha:g}_l{lam:g}"
            saes[name] = FreqWeightedTrainingSAEConfig.from_dict(
                {
                    **sae.to_dict(),
                    "freq_coefficient": beta,
                    "freq_ema_decay": alpha,
                    "l1_coefficient": lam,
                }
            )
        if self.include_standard:
            for lam in lambdas:
                saes[f"standard_l{lam:g}"] = StandardTrainingSAEConfig.from_dict(
                    {
                        **sae.to_dict(),
                        "architecture": "standard",
                        "l1_coefficient": lam,
                        "l1_warm_up_steps": sae.l1_warm_up_steps,
                    }
                )
        return {name: self._variant(name, cfg) for name, cfg in saes.items()}

    def _variant(self, name: str, sae: Any) -> LanguageModelSAERunnerConfig[Any]:
        cfg = copy.copy(self.base)
        cfg.sae = sae
        cfg.output_path = str(Path(str(self.base.output_path)) / name)
        cfg.logger = copy.copy(self.base.logger)
        cfg.logger.run_name = f"{self.base.logger.run_name}-{name}"
        return cfg

    def multi_sae_config(self) -> MultiSAETrainingRunnerConfig:
        """SAELens's multi-SAE runner config for this sweep (W&B is per variant)."""
        shared = {
            f.name: getattr(self.base, f.name)
            for f in fields(MultiSAETrainingRunnerConfig)
            if f.init
            and f.name not in _NOT_SHARED
            and not f.name.startswith("_")
            and hasattr(self.base, f.name)
        }
        cfg = MultiSAETrainingRunnerConfig(
            saes={name: v.sae for name, v in self.variants().items()},
            hook_names=self.base.hook_name,
            hook_head_indices=self.base.hook_head_index,
            logger=replace(self.base.logger, log_to_wandb=False),
            **shared,
        )
        cfg.checkpoint_path = self.base.checkpoint_path  # already has its run id
        return cfg


class SweepRunner(MultiSAETrainingRunner):
    """Run a :class:`SweepConfig` with SAELens's multi-SAE runner; outputs per variant."""

    def __init__(
        self,
        sweep: SweepConfig,
        override_model: HookedRootModule | None = None,
        override_dataset: Any = None,
    ) -> None:
        self.sweep = sweep
        self.variant_cfgs = sweep.variants()
        seed_everything(sweep.base.seed)  # same initial weights for a given seed
        super().__init__(
            sweep.multi_sae_config(),
            override_dataset=override_dataset,
            override_model=override_model,
        )
        self.metrics = {
            name: MetricsLog(Path(str(cfg.output_path)) / METRICS_FILENAME)
            for name, cfg in self.variant_cfgs.items()
        }
        self.wandb_runs: dict[str, Any] = {}

    def run(self) -> dict[str, TrainingSAE[Any]]:
        logger_cfg = self.sweep.base.logger
        if logger_cfg.log_to_wandb:
            for name, cfg in self.variant_cfgs.items():
                self.wandb_runs[name] = wandb.init(
                    project=logger_cfg.wandb_project,
                    entity=logger_cfg.wandb_entity,
                    name=cfg.logger.run_name,
                    group=logger_cfg.run_name,
                    config=cfg.to_dict(),
                    dir=cfg.output_path,
                    reinit="create_new",
                )
        try:
            saes = super().run()
        finally:
            for log in self.metrics.values():
                log.flush()
            for wandb_run in self.wandb_runs.values():
                wandb_run.finish()
            if self.wandb_runs and wandb.run is None:
                # Observed with wandb 0.31 and concurrent runs: finish() can return
                # before the last run's file is written; teardown waits for it.
                wandb.teardown()
        for cfg in self.variant_cfgs.values():
            folder = Path(str(cfg.output_path))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RUNNER_CFG_FILENAME).write_text(json.dumps(cfg.to_dict()))
        return saes

    def _run_with_interruption_handling(
        self, trainer: MultiSAETrainer
    ) -> dict[str, TrainingSAE[Any]]:
        resumed_step = (
            trainer.n_training_steps if self.cfg.resume_from_checkpoint else 0
        )
        for name, variant_trainer in trainer.trainers.items():
            _keep_records_before(self.metrics[name], resumed_step)
            self._log_each_step(name, variant_trainer)
        return super()._run_with_interruption_handling(trainer)

    def _log_each_step(self, name: str, trainer: SAETrainer[Any, Any]) -> None:
        # A per-variant seam: SAELens's multi-SAE trainer steps each trainer through
        # its public step(); this wrapper logs that variant alone, on SAELens's cadence.
        original_step = trainer.step
        every = self.sweep.base.logger.wandb_log_frequency
        metrics, wandb_run = self.metrics[name], self.wandb_runs.get(name)

        def step(batch: torch.Tensor) -> TrainStepOutput:
            output = original_step(batch)
            index = trainer.n_training_steps
            if (index + 1) % every == 0:
                values = trainer.build_train_step_log_dict(
                    output, trainer.n_training_samples
                )
                metrics.start_record(index, trainer.n_training_samples, values)
                if wandb_run is not None:
                    wandb_run.log(values, step=index)
            return output

        trainer.step = step  # type: ignore[method-assign]


def _keep_records_before(log: MetricsLog, step: int) -> None:
    # Fresh run: start an empty file. Resume: drop lines the interrupted run logged
    # after its checkpoint, which are about to be logged again.
    path = log.path
    if path is None or not path.exists():
        return
    if step == 0:
        log.reset()
        return
    kept = [r for r in read_metrics(path) if r["step"] < step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
