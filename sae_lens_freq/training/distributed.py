"""Data-parallel training of one SAE with ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc_per_node N [--nnodes M ...] -m sae_lens_freq train ...`` starts
one process per device; each calls :func:`run_data_parallel` with the same config,
which describes the *global* run (``train_batch_size_tokens`` and
``training_tokens`` are totals over ranks). Each piece uses a public SAELens seam:

- **Data**: every rank runs SAELens's ``ActivationsStore`` (LLM, mixing buffer) on a
  disjoint shard cut by ``datasets``' ``split_dataset_by_node`` (whole files per rank
  when the file count divides by the world size, else every ``world_size``-th
  document), with a batch of ``train_batch_size_tokens / world_size``.
- **Gradients**: SAELens's trainer calls ``sae.training_forward_pass``, not
  ``sae(...)``, so ``DistributedDataParallel``'s forward (which arms its reducer)
  would never run. Each parameter gets a post-accumulate-grad hook that averages
  its gradient over ranks as backward produces it (the autograd seam DDP uses),
  before SAELens's gradient clipping and the unit-norm projection.
- **feature_freq**: ``FreqWeightedTrainingSAE.batch_firing_rate`` averages the
  firing rate over ranks, so every rank applies the same penalty and buffer.
- **Dead-feature statistics**: :class:`DataParallelSAETrainer` overrides
  ``SAETrainer.step``: ``n_forward_passes_since_fired`` is all-reduced with min (0
  iff the feature fired on some rank), the step's ``act_freq_scores`` increment
  with sum; ``n_training_samples`` counts global samples. Rank 0's initial weights
  are broadcast; the activation-norm scale is estimated from all ranks' data.
- **Outputs**: only rank 0 logs (W&B, ``metrics.jsonl``; logged numbers are means
  over ranks) and writes checkpoints and the export; each other rank adds its shard
  position, ``activations_store_state.rank<r>.safetensors``, to rank 0's
  checkpoint folder, so ``resume_from_checkpoint`` continues every shard (at
  document granularity, like SAELens: mixing buffers start empty).
- **Signals**: SIGINT/SIGTERM (``torchrun`` forwards them to every worker) request a
  stop; every step starts with a max-all-reduce of that request, so all ranks stop
  at the same step boundary and write one checkpoint there, as the single-process
  runner does (:meth:`DataParallelSAETrainer.fit_until_signal`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import wandb
from sae_lens import LanguageModelSAERunnerConfig, logger
from sae_lens.constants import ACTIVATIONS_STORE_STATE_FILENAME
from sae_lens.llm_sae_training_runner import LanguageModelSAETrainingRunner
from sae_lens.saes.sae import TrainingSAE, TrainStepOutput
from sae_lens.training.activation_scaler import ActivationScaler
from sae_lens.training.sae_trainer import SAETrainer
from torch import nn
from transformer_lens.HookedTransformer import HookedRootModule

from sae_lens_freq.training.checkpointing import seed_everything
from sae_lens_freq.training.interrupts import InterruptGuard, TrainingInterrupted
from sae_lens_freq.training.metrics_log import METRICS_FILENAME, MetricsLog


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the ``torch.distributed`` job.

    Args:
        rank: Global rank of this process, in ``[0, world_size)``.
        world_size: Number of processes (>= 1).
        local_rank: Rank on this machine; selects the GPU.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistributedContext:
    """Join the job ``torchrun`` set up (env ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``...).

    ``backend`` defaults to NCCL when CUDA is available and gloo otherwise; an
    already-initialised process group is reused.
    """
    if backend not in (None, "nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None, got {backend!r}")
    if not dist.is_initialized():
        for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(
                    f"environment variable {name} is not set: launch with torchrun "
                    "(torchrun --nproc_per_node N -m sae_lens_freq train ...)"
                )
        use_cuda = torch.cuda.is_available() and backend != "gloo"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend or ("nccl" if use_cuda else "gloo"))
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
    )


def average_gradients_in_backward(
    module: nn.Module, world_size: int
) -> list[torch.utils.hooks.RemovableHandle]:
    """Average every parameter's gradient over ranks as soon as backward writes it."""

    def hook(param: torch.Tensor) -> None:
        assert param.grad is not None
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad.div_(world_size)

    return [
        p.register_post_accumulate_grad_hook(hook)
        for p in module.parameters()
        if p.requires_grad
    ]


@torch.no_grad()
def broadcast_module_(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank, in place."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=src)


class DistributedActivationScaler(ActivationScaler):
    """SAELens's scaler, with the norm estimate averaged over ranks (equal sample counts)."""

    def estimate_scaling_factor(self, d_in: int, *args: Any, **kwargs: Any) -> None:
        super().estimate_scaling_factor(d_in, *args, **kwargs)
        assert self.scaling_factor is not None
        mean_norm = torch.tensor([d_in**0.5 / self.scaling_factor], dtype=torch.float64)
        dist.all_reduce(mean_norm)
        self.scaling_factor = d_in**0.5 / (float(mean_norm) / dist.get_world_size())


class DataParallelSAETrainer(SAETrainer[Any, Any]):
    """``SAETrainer`` for one rank of a data-parallel job (see the module docstring).

    ``cfg`` is the *global* trainer config (global batch and token counts); each
    ``next(data_provider)`` yields this rank's ``train_batch_size_samples /
    world_size`` samples. ``metrics`` (rank 0) gets one record per logging step
    (cadence ``cfg.logger.wandb_log_frequency``), W&B or not.
    """

    def __init__(
        self,
        *args: Any,
        context: DistributedContext,
        metrics: MetricsLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.context = context
        self.metrics = (
            metrics if metrics is not None and context.is_main else MetricsLog(None)
        )
        self._global_log: tuple[int, dict[str, Any]] | None = None
        self.guard: InterruptGuard | None = None
        """Set by :meth:`fit_until_signal`; its stop request is shared by all ranks."""
        if context.world_size > 1:
            broadcast_module_(self.sae)
            self.activation_scaler = DistributedActivationScaler()

    def fit(self) -> Any:
        handles = average_gradients_in_backward(self.sae, self.context.world_size)
        try:
            return super().fit()
        finally:
            self.metrics.flush()
            for handle in handles:
                handle.remove()

    def fit_until_signal(self) -> Any:
        """``fit()`` with SIGINT/SIGTERM handled on every rank.

        A signal on any rank stops all ranks at the start of the same step; a
        checkpoint named after ``n_training_samples`` is written (rank 0 the weights
        and trainer state, every rank its data position) and ``TrainingInterrupted``
        is raised with its ``checkpoint_path``. The previous handlers come back.
        """
        with InterruptGuard() as guard:
            self.guard = guard
            try:
                return self.fit()
            except TrainingInterrupted as interrupted:
                if interrupted.at_step_boundary and self.cfg.checkpoint_path:
                    name = str(self.n_training_samples)
                    self.save_checkpoint(name)
                    interrupted.checkpoint_path = str(
                        Path(self.cfg.checkpoint_path) / name
                    )
                raise
            finally:
                self.guard = None

    def _stop_if_any_rank_was_signalled(self) -> None:
        if self.guard is None:
            return
        signum = self.guard.requested_signum or 0
        if self.context.world_size > 1:
            flag = torch.tensor([signum], device=self.sae.W_dec.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if signum:
            raise TrainingInterrupted(signum)

    def step(self, batch: torch.Tensor) -> TrainStepOutput:
        self._stop_if_any_rank_was_signalled()
        fired_before = self.act_freq_scores.clone()
        output = super().step(batch)
        world = self.context.world_size
        if world > 1:
            dist.all_reduce(self.n_forward_passes_since_fired, op=dist.ReduceOp.MIN)
            increment = self.act_freq_scores - fired_before
            dist.all_reduce(increment)
            self.act_freq_scores = fired_before + increment
            self.n_training_samples += (world - 1) * batch.shape[0]
        if (self.n_training_steps + 1) % self.cfg.logger.wandb_log_frequency == 0:
            self._global_log = (self.n_training_steps, self._mean_log_dict(output))
            self.metrics.start_record(
                self.n_training_steps, self.n_training_samples, self._global_log[1]
            )
        return output

    def build_train_step_log_dict(
        self, output: TrainStepOutput, n_training_samples: int
    ) -> dict[str, Any]:
        # SAELens's W&B logging (rank 0) gets the rank-averaged dict of this step.
        if (
            self._global_log is not None
            and self._global_log[0] == self.n_training_steps
        ):
            return dict(self._global_log[1])
        return super().build_train_step_log_dict(output, n_training_samples)

    def _mean_log_dict(self, output: TrainStepOutput) -> dict[str, Any]:
        local = super().build_train_step_log_dict(output, self.n_training_samples)
        keys = sorted(k for k, v in local.items() if isinstance(v, (int, float)))
        if self.context.world_size > 1 and keys:
            values = torch.tensor([float(local[k]) for k in keys], dtype=torch.float64)
            dist.all_reduce(values)
            values /= self.context.world_size
            local.update(
                {k: float(v) for k, v in zip(keys, values.tolist(), strict=True)}
            )
        return local

    def save_checkpoint(
        self,
        checkpoint_name: str,
        base_path: Path | str | None = None,
        wandb_aliases: list[str] | None = None,
    ) -> None:
        if self.context.is_main:
            super().save_checkpoint(checkpoint_name, base_path, wandb_aliases)
            base = base_path if base_path is not None else self.cfg.checkpoint_path
            if base is not None:
                self.metrics.copy_to(Path(base) / checkpoint_name)
        else:
            base = base_path if base_path is not None else self.cfg.checkpoint_path
            if base is not None and self.save_checkpoint_fn is not None:
                path = Path(base) / checkpoint_name
                path.mkdir(parents=True, exist_ok=True)
                self.save_checkpoint_fn(checkpoint_path=path)
        if self.context.world_size > 1:
            dist.barrier()

    def load_trainer_state(self, checkpoint_path: Path | str) -> None:
        super().load_trainer_state(checkpoint_path)
        # A mid-run checkpoint is written before fit() counts its step: re-derive it.
        self.n_training_steps = (
            self.n_training_samples // self.cfg.train_batch_size_samples
        )


def store_state_filename(rank: int) -> str:
    """Checkpoint file holding rank ``rank``'s position in its data shard."""
    if rank == 0:
        return ACTIVATIONS_STORE_STATE_FILENAME
    stem, ext = ACTIVATIONS_STORE_STATE_FILENAME.rsplit(".", 1)
    return f"{stem}.rank{rank}.{ext}"


def rank_config(
    cfg: LanguageModelSAERunnerConfig[Any], context: DistributedContext
) -> LanguageModelSAERunnerConfig[Any]:
    """This rank's view of the global ``cfg``: its share of the batch and tokens."""
    world = context.world_size
    if cfg.train_batch_size_tokens % world != 0:
        raise ValueError(
            f"train_batch_size_tokens={cfg.train_batch_size_tokens} must be a multiple "
            f"of the world size {world} (it is the global batch)"
        )
    if cfg.sae.normalize_activations not in ("none", "expected_average_only_in"):
        raise ValueError(
            f"normalize_activations={cfg.sae.normalize_activations!r} is not supported "
            "data-parallel; allowed: 'none', 'expected_average_only_in'"
        )
    if cfg.use_cached_activations:
        raise ValueError(
            "use_cached_activations=True is not supported data-parallel: the cache "
            "store reads rows from the start on every rank; allowed: False"
        )
    local = copy.copy(cfg)
    local.train_batch_size_tokens = cfg.train_batch_size_tokens // world
    local.training_tokens = cfg.training_tokens // world
    local.logger = replace(
        cfg.logger, log_to_wandb=cfg.logger.log_to_wandb and context.is_main
    )
    return local


def shard_dataset(dataset: Any, context: DistributedContext) -> Any:
    """This rank's disjoint part of a ``datasets`` (Iterable)Dataset."""
    from datasets import Dataset, IterableDataset
    from datasets.distributed import split_dataset_by_node

    if not isinstance(dataset, (Dataset, IterableDataset)):
        raise ValueError(
            f"dataset must be a datasets Dataset or IterableDataset (one split), got "
            f"{type(dataset).__name__}"
        )
    rank, world = context.rank, context.world_size
    if isinstance(dataset, Dataset):
        return split_dataset_by_node(dataset, rank=rank, world_size=world)
    return split_dataset_by_node(dataset, rank=rank, world_size=world)


class DataParallelTrainingRunner(LanguageModelSAETrainingRunner):
    """SAELens's runner for one rank: sharded store, :class:`DataParallelSAETrainer`."""

    def __init__(
        self,
        cfg: LanguageModelSAERunnerConfig[Any],
        context: DistributedContext,
        override_model: HookedRootModule | None = None,
        override_dataset: Any = None,
    ) -> None:
        self.context = context
        cfg = copy.copy(cfg)
        cfg.logger = copy.copy(cfg.logger)
        if context.world_size > 1:
            # Every rank must write into rank 0's (randomly suffixed) checkpoint folder.
            shared = [cfg.checkpoint_path, cfg.logger.run_name]
            dist.broadcast_object_list(shared, src=0)
            cfg.checkpoint_path, cfg.logger.run_name = shared
        seed_everything(cfg.seed)
        if override_dataset is None:
            from datasets import load_dataset

            override_dataset = load_dataset(
                cfg.dataset_path,
                split="train",
                streaming=cfg.streaming,
                trust_remote_code=cfg.dataset_trust_remote_code,
            )
        super().__init__(
            rank_config(cfg, context),
            override_dataset=shard_dataset(override_dataset, context),
            override_model=override_model,
        )
        # From here on the runner speaks for the global run (runner_cfg.json, trainer).
        self.cfg = cfg

    def run(self) -> TrainingSAE[Any]:
        main = self.context.is_main
        self._set_sae_metadata()
        log_to_wandb = self.cfg.logger.log_to_wandb and main
        if log_to_wandb:
            wandb.init(
                project=self.cfg.logger.wandb_project,
                entity=self.cfg.logger.wandb_entity,
                config=self.cfg.to_dict(),
                name=self.cfg.logger.run_name,
                id=self.cfg.logger.wandb_id,
            )
        trainer_cfg = self.cfg.to_sae_trainer_config()
        trainer_cfg.logger = replace(trainer_cfg.logger, log_to_wandb=log_to_wandb)
        output = self.cfg.output_path
        metrics = MetricsLog(
            Path(output) / METRICS_FILENAME if main and output else None
        )
        trainer = DataParallelSAETrainer(
            cfg=trainer_cfg,
            sae=self.sae,
            data_provider=self.activations_store,
            evaluator=self.evaluator if main else None,
            save_checkpoint_fn=self.save_checkpoint,
            context=self.context,
            metrics=metrics,
        )
        resume = self.cfg.resume_from_checkpoint
        if resume is not None:
            logger.info(f"Resuming from checkpoint: {resume}")
            trainer.load_trainer_state(resume)
            self.sae.load_weights_from_checkpoint(resume)
            self.activations_store.load(
                str(Path(resume) / store_state_filename(self.context.rank))
            )
            metrics.restore_from(Path(resume))
        else:
            metrics.reset()
        self._compile_sae_if_needed()
        try:
            sae = trainer.fit_until_signal()
        except TrainingInterrupted:
            metrics.flush()
            if log_to_wandb:
                wandb.finish(exit_code=1)
            raise
        if main and self.cfg.output_path is not None:
            self.save_final_sae(sae, self.cfg.output_path, trainer.log_feature_sparsity)
        if log_to_wandb:
            wandb.finish()
        if self.context.world_size > 1:
            dist.barrier()
        return sae

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        if checkpoint_path is None:
            return
        if self.context.is_main:
            super().save_checkpoint(checkpoint_path)
        else:
            name = store_state_filename(self.context.rank)
            self.activations_store.save(str(checkpoint_path / name))


def run_data_parallel(
    cfg: LanguageModelSAERunnerConfig[Any],
    override_model: HookedRootModule | None = None,
    override_dataset: Any = None,
    backend: str | None = None,
) -> TrainingSAE[Any]:
    """Train ``cfg`` data-parallel in this ``torchrun`` process; returns the trained SAE.

    Every rank returns the same SAE; only rank 0 writes ``cfg.output_path`` and
    checkpoints. The process group is created if needed and destroyed if created here.
    """
    created = not dist.is_initialized()
    context = init_distributed(backend)
    try:
        return DataParallelTrainingRunner(
            cfg,
            context,
            override_model=override_model,
            override_dataset=override_dataset,
        ).run()
    finally:
        if created:
            dist.destroy_process_group()
