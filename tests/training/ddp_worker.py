"""torchrun worker for tests/training/test_distributed.py (gloo, CPU).

``python -m torch.distributed.run --nproc_per_node 2 ddp_worker.py MODE OUT [ARGS]``

- ``fixed OUT``: a :class:`DataParallelSAETrainer` on a fixed activation stream
  (rank r takes rows ``[r*B, (r+1)*B)`` of every global batch), with one mid-run
  checkpoint; then a fresh trainer resumes from that checkpoint and finishes.
  Writes ``OUT/rank<r>.pt`` with both final states.
- ``signal OUT``: the fixed stream, but rank 1 receives SIGTERM while drawing the
  batch of step ``SIGNAL_STEP``; every rank must stop there and checkpoint, and a
  fresh trainer resumes from that checkpoint and finishes.
- ``tiny OUT MODEL_DIR DATA_DIR``: ``run_data_parallel`` end to end on the tiny
  model, then a second run resumed from its checkpoint. Writes ``OUT/rank<r>.pt``.

The test imports this file too, for the builders of the single-process reference.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

D_IN = 16
D_SAE = 48
GLOBAL_BATCH = 64
N_STEPS = 24
SIGNAL_STEP = 10


def global_batches() -> list[torch.Tensor]:
    """The fixed global batches (heavy-tailed, so some features die and some fire)."""
    gen = torch.Generator().manual_seed(1234)
    return [
        torch.randn(GLOBAL_BATCH, D_IN, generator=gen)
        * torch.rand(1, D_IN, generator=gen)
        for _ in range(N_STEPS)
    ]


def build_sae(seed: int) -> Any:
    from sae_lens_freq import FreqWeightedTrainingSAE, FreqWeightedTrainingSAEConfig

    torch.manual_seed(seed)
    cfg = FreqWeightedTrainingSAEConfig(
        d_in=D_IN, d_sae=D_SAE, l1_coefficient=0.3, freq_warm_up_steps=4
    )
    sae = FreqWeightedTrainingSAE(cfg)
    # A spread of negative biases: from always-firing to rarely-firing features, so
    # dead-feature counters differ between what one rank and all ranks see.
    sae.b_enc.data = -torch.linspace(0.0, 0.8, D_SAE)
    return sae


def trainer_config(checkpoint_path: str | None, n_checkpoints: int) -> Any:
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    return SAETrainerConfig(
        total_training_samples=N_STEPS * GLOBAL_BATCH,
        train_batch_size_samples=GLOBAL_BATCH,
        lr=3e-3,
        lr_end=3e-4,
        lr_scheduler_name="cosineannealing",
        lr_decay_steps=N_STEPS,
        dead_feature_window=3,
        feature_sampling_window=8,
        n_checkpoints=n_checkpoints,
        checkpoint_path=checkpoint_path,
        logger=LoggingConfig(log_to_wandb=False, wandb_log_frequency=5),
    )


def trainer_state(trainer: Any) -> dict[str, Any]:
    return {
        "weights": {k: v.detach().clone() for k, v in trainer.sae.state_dict().items()},
        "n_forward_passes_since_fired": trainer.n_forward_passes_since_fired.clone(),
        "act_freq_scores": trainer.act_freq_scores.clone(),
        "n_frac_active_samples": trainer.n_frac_active_samples,
        "n_training_samples": trainer.n_training_samples,
        "n_training_steps": trainer.n_training_steps,
    }


def _shard_stream(rank: int, world: int, start_step: int) -> Iterator[torch.Tensor]:
    local = GLOBAL_BATCH // world
    for batch in global_batches()[start_step:]:
        yield batch[rank * local : (rank + 1) * local]


def _resume_and_finish(ctx: Any, checkpoint: str | Path) -> tuple[dict[str, Any], int]:
    """A fresh trainer (other initial weights) resumed from ``checkpoint``, run to the
    end of the fixed stream; returns its final state and the step it resumed at."""
    from sae_lens_freq.training.distributed import DataParallelSAETrainer

    resumed = DataParallelSAETrainer(
        cfg=trainer_config(None, n_checkpoints=0),
        sae=build_sae(seed=100 + ctx.rank),
        data_provider=iter(()),
        context=ctx,
    )
    resumed.load_trainer_state(checkpoint)
    resumed.sae.load_weights_from_checkpoint(checkpoint)
    resume_step = resumed.n_training_steps
    resumed.data_provider = _shard_stream(ctx.rank, ctx.world_size, resume_step)
    resumed.fit()
    return trainer_state(resumed), resume_step


def run_fixed(out: Path) -> None:
    from sae_lens_freq.training.distributed import (
        DataParallelSAETrainer,
        init_distributed,
    )
    from sae_lens_freq.training.metrics_log import MetricsLog

    ctx = init_distributed("gloo")
    ckpt = out / "ckpt"
    # Different seeds per rank: the trainer must broadcast rank 0's weights.
    trainer = DataParallelSAETrainer(
        cfg=trainer_config(str(ckpt), n_checkpoints=1),
        sae=build_sae(seed=ctx.rank),
        data_provider=_shard_stream(ctx.rank, ctx.world_size, 0),
        context=ctx,
        metrics=MetricsLog(out / "metrics.jsonl"),
    )
    trainer.fit()
    full = trainer_state(trainer)

    (checkpoint,) = sorted(ckpt.iterdir())
    resumed, resume_step = _resume_and_finish(ctx, checkpoint)
    result = {"full": full, "resumed": resumed, "resume_step": resume_step}
    torch.save(result, out / f"rank{ctx.rank}.pt")


def run_signal(out: Path) -> None:
    import signal

    from sae_lens_freq.training.distributed import (
        DataParallelSAETrainer,
        init_distributed,
    )
    from sae_lens_freq.training.interrupts import TrainingInterrupted

    ctx = init_distributed("gloo")

    def stream() -> Iterator[torch.Tensor]:
        for step, batch in enumerate(_shard_stream(ctx.rank, ctx.world_size, 0)):
            if step == SIGNAL_STEP and ctx.rank == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    trainer = DataParallelSAETrainer(
        cfg=trainer_config(str(out / "ckpt"), n_checkpoints=0),
        sae=build_sae(seed=ctx.rank),
        data_provider=stream(),
        context=ctx,
    )
    previous = signal.getsignal(signal.SIGTERM)
    try:
        trainer.fit_until_signal()
        raise AssertionError("training was not interrupted")
    except TrainingInterrupted as interrupted:
        checkpoint, exit_code = interrupted.checkpoint_path, interrupted.exit_code
    assert checkpoint is not None
    handlers_restored = signal.getsignal(signal.SIGTERM) is previous

    resumed, resume_step = _resume_and_finish(ctx, checkpoint)
    result = {
        "resumed": resumed,
        "resume_step": resume_step,
        "exit_code": exit_code,
        "handlers_restored": handlers_restored,
        "checkpoint": checkpoint,
    }
    torch.save(result, out / f"rank{ctx.rank}.pt")


def run_tiny(out: Path, model_dir: str, data_dir: str) -> None:
    from sae_lens import LanguageModelSAERunnerConfig
    from sae_lens.config import LoggingConfig

    from sae_lens_freq import FreqWeightedTrainingSAEConfig
    from sae_lens_freq.models import load_hooked_transformer
    from sae_lens_freq.training.distributed import init_distributed, run_data_parallel

    ctx = init_distributed("gloo")
    model = load_hooked_transformer(model_dir)

    def config(resume: str | None, checkpoint_path: str) -> Any:
        return LanguageModelSAERunnerConfig(
            sae=FreqWeightedTrainingSAEConfig(d_in=64, d_sae=128, freq_warm_up_steps=5),
            model_name="tiny",
            hook_name="blocks.1.hook_resid_post",
            dataset_path=data_dir,
            is_dataset_tokenized=False,
            streaming=True,
            context_size=32,
            store_batch_size_prompts=4,
            n_batches_in_buffer=4,
            train_batch_size_tokens=64,
            training_tokens=64 * 20,
            n_checkpoints=1,
            checkpoint_path=checkpoint_path,
            output_path=str(out / ("resumed" if resume else "run")),
            resume_from_checkpoint=resume,
            logger=LoggingConfig(log_to_wandb=False, wandb_log_frequency=2),
            n_batches_for_norm_estimate=2,
            verbose=False,
        )

    torch.manual_seed(0)
    sae = run_data_parallel(config(None, str(out / "ckpt")), override_model=model)
    first = {k: v.detach().clone() for k, v in sae.state_dict().items()}
    (run_dir,) = (out / "ckpt").iterdir()
    (checkpoint,) = run_dir.iterdir()
    resumed = run_data_parallel(
        config(str(checkpoint), str(out / "ckpt_resumed")), override_model=model
    )
    torch.save(
        {
            "first": first,
            "resumed": {k: v.detach().clone() for k, v in resumed.state_dict().items()},
            "checkpoint": str(checkpoint),
        },
        out / f"rank{ctx.rank}.pt",
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "offline")
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    if mode == "fixed":
        run_fixed(out_dir)
    elif mode == "signal":
        run_signal(out_dir)
    else:
        run_tiny(out_dir, sys.argv[3], sys.argv[4])
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
