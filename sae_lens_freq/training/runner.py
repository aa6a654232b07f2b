"""``FreqSAETrainingRunner``: SAELens's language-model runner, with the fixes a FreqSAE run needs.

A drop-in subclass of ``sae_lens.LanguageModelSAETrainingRunner``; every SAELens
config field keeps its meaning. SAELens's own runner also trains a FreqSAE (the
architecture is registered on ``import sae_lens_freq``); this one adds, through
overrides and instance-level wrappers only:

- **Signals**: SIGINT/SIGTERM stop at the next step boundary and write a full
  checkpoint to ``<checkpoint_path>/<n_training_samples>`` (SAELens 6.54 writes a
  partial one into a folder it never creates, and crashes); the previous handlers
  come back when training ends. ``run()`` then raises ``TrainingInterrupted`` (a
  ``KeyboardInterrupt``) whose ``checkpoint_path`` names the folder.
- **Exact resume**: checkpoints also hold the mixing buffer, the token-stream
  position, the RNG states and the true step count (see
  :mod:`~sae_lens_freq.training.checkpointing`); ``resume_from_checkpoint`` then
  continues bit-for-bit as the uninterrupted run would have. Not with
  ``prefetch_llm_batches`` or cached activations (their queues are not saved):
  those resume like SAELens (same data position to the document, fresh buffer).
  Resuming also drops checkpoint thresholds already passed, which SAELens would
  write again at once.
- **Seeding**: ``cfg.seed`` seeds torch, numpy and ``random`` before the SAE is
  built (SAELens 6.54 ignores it), so two runs of one config are identical.
- **metrics.jsonl** in ``output_path`` (schema: :mod:`~sae_lens_freq.training.
  metrics_log`), written with W&B on or off; the evaluator runs on the same
  cadence either way.
- **Local pre-tokenised datasets** (``PretokenizeRunner`` output folders) load
  without the Hub, and the ``datasets``/torchvision incompatibility is patched
  (see :mod:`~sae_lens_freq.training.pretokenized`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import wandb
from sae_lens.config import HfDataset, LanguageModelSAERunnerConfig
from sae_lens.llm_sae_training_runner import LanguageModelSAETrainingRunner
from sae_lens.saes.sae import TrainingSAE, TrainStepOutput
from sae_lens.training.sae_trainer import SAETrainer
from transformer_lens.HookedTransformer import HookedRootModule
from typing_extensions import override

from sae_lens_freq.registration import register
from sae_lens_freq.training.activation_stream import (
    ExactResumeUnavailable,
    ResumableActivationStream,
    TokenStreamPosition,
    stream_from_state,
)
from sae_lens_freq.training.checkpointing import (
    ResumeState,
    capture_rng,
    restore_rng,
    seed_everything,
)
from sae_lens_freq.training.evaluator import KLScoreEvaluator
from sae_lens_freq.training.interrupts import InterruptGuard, TrainingInterrupted
from sae_lens_freq.training.metrics_log import METRICS_FILENAME, MetricsLog
from sae_lens_freq.training.pretokenized import (
    ensure_datasets_torch_format,
    is_local_pretokenized,
    load_local_pretokenized,
    validate_local_tokenizer,
)

logger = logging.getLogger(__name__)


class FreqSAETrainingRunner(LanguageModelSAETrainingRunner):
    """Train an SAE (a FreqSAE, typically) on a language model's activations.

    Args:
        cfg: SAELens's runner config; ``cfg.sae`` a ``FreqWeightedTrainingSAEConfig``
            or any other registered training config.
        override_dataset: A dataset object to use instead of ``cfg.dataset_path``.
        override_model: A loaded model to use instead of ``cfg.model_name`` (e.g.
            ``sae_lens_freq.models.load_hooked_transformer(DIR)``).
        override_sae: A training SAE to use instead of building one from ``cfg.sae``.
    """

    def __init__(
        self,
        cfg: LanguageModelSAERunnerConfig[Any],
        override_dataset: HfDataset | None = None,
        override_model: HookedRootModule | None = None,
        override_sae: TrainingSAE[Any] | None = None,
    ):
        register()
        ensure_datasets_torch_format()
        seed_everything(cfg.seed)
        local_pretokenized = override_dataset is None and is_local_pretokenized(
            cfg.dataset_path
        )
        if local_pretokenized:
            override_dataset = load_local_pretokenized(
                cfg.dataset_path, streaming=cfg.streaming
            )
        super().__init__(cfg, override_dataset, override_model, override_sae)
        if local_pretokenized and getattr(self.model, "tokenizer", None) is not None:
            validate_local_tokenizer(cfg.dataset_path, self.model.tokenizer)

        self.evaluator = KLScoreEvaluator(
            model=self.model,
            activations_store=self.activations_store,
            eval_batch_size_prompts=cfg.eval_batch_size_prompts,
            n_eval_batches=cfg.n_eval_batches,
            model_kwargs=cfg.model_kwargs,
        )
        store = self.activations_store
        self.exact_resume: bool = (
            not cfg.prefetch_llm_batches
            and store.dataset is not None
            and store.cached_activation_dataset is None
        )
        """Whether checkpoints capture the data stream exactly (see module docstring)."""
        self.metrics = MetricsLog(
            Path(cfg.output_path) / METRICS_FILENAME if cfg.output_path else None
        )
        self.token_position = TokenStreamPosition(store) if self.exact_resume else None
        self.stream: ResumableActivationStream | None = None
        self.trainer: SAETrainer[Any, Any] | None = None
        self._resume_state: ResumeState | None = None
        """The plugin's part of the checkpoint being resumed, read once."""
        self.completed_steps = 0
        """Training steps completed, counted here (SAELens's counter lags inside a step)."""
        self._use_exact_store_position(store)

    @override
    def run(self) -> TrainingSAE[Any]:
        try:
            return super().run()
        except KeyboardInterrupt:
            if self.cfg.logger.log_to_wandb and wandb.run is not None:
                wandb.finish(exit_code=1)
            raise

    @override
    def run_trainer_with_interruption_handling(
        self, trainer: SAETrainer[Any, Any]
    ) -> TrainingSAE[Any]:
        self.trainer = trainer
        self.restore_training_state(trainer)
        with InterruptGuard() as guard:
            self._wrap_trainer(trainer, guard)
            try:
                return trainer.fit()
            except TrainingInterrupted as interrupted:
                self.metrics.flush()
                if interrupted.at_step_boundary and self.cfg.checkpoint_path:
                    name = str(trainer.n_training_samples)
                    trainer.save_checkpoint(name)
                    interrupted.checkpoint_path = str(
                        Path(self.cfg.checkpoint_path) / name
                    )
                    logger.warning(
                        "interrupted; resume from %s", interrupted.checkpoint_path
                    )
                raise
            finally:
                self.metrics.flush()

    def restore_training_state(self, trainer: SAETrainer[Any, Any]) -> None:
        """Called after SAELens loaded a checkpoint (if any), right before ``fit()``.

        Restores what SAELens does not: the true step count, the RNG states, the
        mixing buffer and the metrics file; installs the resumable data stream.
        """
        resume = self.cfg.resume_from_checkpoint
        state = self._load_resume_state(resume) if resume else None
        if resume is None:
            self.metrics.reset()
        else:
            done = trainer.n_training_samples
            trainer.checkpoint_thresholds = [
                t for t in trainer.checkpoint_thresholds if t >= done
            ]
            self.metrics.restore_from(Path(resume))
            if state is None:
                logger.warning(
                    "%s is a plain SAELens checkpoint: the resume is approximate "
                    "(mixing buffer and RNG not saved; step count may lag by one)",
                    resume,
                )
            else:
                trainer.n_training_steps = state.n_training_steps
                restore_rng(state.rng)
        self.completed_steps = trainer.n_training_steps
        if self.exact_resume:
            self.stream = stream_from_state(
                self.activations_store, state.stream if state else None
            )
            trainer.data_provider = self.stream

    @override
    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        super().save_checkpoint(checkpoint_path)
        if checkpoint_path is None or self.trainer is None:
            return
        stream_state = None
        if self.stream is not None:
            try:
                stream_state = self.stream.state()
            except ExactResumeUnavailable as err:
                logger.warning("checkpoint will resume approximately: %s", err)
        position = self.token_position
        ResumeState(
            n_training_steps=self.completed_steps,
            n_dataset_processed=self.activations_store.n_dataset_processed,
            sequences_in_epoch=position.sequences_in_epoch if position else None,
            stream=stream_state,
            rng=capture_rng(),
        ).save(checkpoint_path)
        self.metrics.copy_to(checkpoint_path)

    def _load_resume_state(self, checkpoint_path: str | Path) -> ResumeState | None:
        # The store's fast-forward and restore_training_state both need it; the
        # saved mixing buffer can be large, so it is read from disk once.
        if self._resume_state is None:
            self._resume_state = ResumeState.load(checkpoint_path)
        return self._resume_state

    # --- instance-level wrappers ---------------------------------------------

    def _use_exact_store_position(self, store: Any) -> None:
        # run() calls store.load_from_checkpoint when resuming; replace SAELens's
        # document-level fast-forward with the exact position when one was saved.
        original = store.load_from_checkpoint

        def load_from_checkpoint(checkpoint_path: str | Path) -> None:
            state = self._load_resume_state(checkpoint_path)
            if (
                self.token_position is None
                or state is None
                or state.stream is None
                or state.sequences_in_epoch is None
            ):
                original(checkpoint_path)
                return
            self.token_position.replay(
                state.sequences_in_epoch, state.n_dataset_processed
            )

        store.load_from_checkpoint = load_from_checkpoint

    def _wrap_trainer(
        self, trainer: SAETrainer[Any, Any], guard: InterruptGuard
    ) -> None:
        original_step = trainer.step

        def step(batch: Any) -> TrainStepOutput:
            if guard.requested_signum is not None:
                if self.stream is not None:
                    self.stream.push_front(batch)  # not trained on: serve it again
                guard.check()
            output = original_step(batch)
            self.completed_steps += 1
            self._log_step(trainer, output)
            return output

        trainer.step = step  # type: ignore[method-assign]

        original_evaluator = trainer.evaluator
        if original_evaluator is not None:

            def evaluator(*args: Any) -> dict[str, Any]:
                eval_metrics = original_evaluator(*args)
                self.metrics.update(eval_metrics)
                return eval_metrics

            trainer.evaluator = evaluator

    def _log_step(self, trainer: SAETrainer[Any, Any], output: TrainStepOutput) -> None:
        step, logger_cfg = trainer.n_training_steps, self.cfg.logger
        if (step + 1) % logger_cfg.wandb_log_frequency != 0:
            return
        values = trainer.build_train_step_log_dict(output, trainer.n_training_samples)
        self.metrics.start_record(step, trainer.n_training_samples, values)
        eval_period = (
            logger_cfg.wandb_log_frequency * logger_cfg.eval_every_n_wandb_logs
        )
        # With W&B on, SAELens runs the (wrapped) evaluator itself after this step.
        if (
            not logger_cfg.log_to_wandb
            and trainer.evaluator is not None
            and (step + 1) % eval_period == 0
        ):
            trainer.sae.eval()
            with torch.no_grad():
                trainer.evaluator(
                    trainer.sae, trainer.data_provider, trainer.activation_scaler
                )
            trainer.sae.train()
