"""Wall time of a k-variant sweep (one shared LLM pass) vs k separate runs.

    .venv/bin/python benchmarks/sweep_cost.py [--k 4] [--steps 40]

Offline, on the tiny Gemma-2-shaped model (``sae_lens_freq.offline``). Both sides
train the same k FreqSAE configs (beta = 0, 0.5, 1, ...) on the same tokens; the
ratio printed is measured in this one process, on this machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from sae_lens import LanguageModelSAERunnerConfig
from sae_lens.config import LoggingConfig

from sae_lens_freq import FreqWeightedTrainingSAEConfig
from sae_lens_freq.offline import (
    build_tiny_gemma2,
    train_tokenizer,
    write_text_dataset,
)
from sae_lens_freq.training import FreqSAETrainingRunner
from sae_lens_freq.training.sweep import SweepConfig, SweepRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=4, help="variants (>= 2)")
    parser.add_argument("--steps", type=int, default=40, help="training steps")
    parser.add_argument("--d-sae", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.k < 2:
        raise ValueError(f"k must be >= 2, got {args.k}")
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="sweep_cost_"))
    model = build_tiny_gemma2(train_tokenizer(tmp / "tokenizer"), n_ctx=128)
    data = write_text_dataset(tmp / "data", repeats=8)
    batch = 1024
    base = LanguageModelSAERunnerConfig(
        sae=FreqWeightedTrainingSAEConfig(d_in=64, d_sae=args.d_sae),
        model_name="tiny",
        hook_name="blocks.1.hook_resid_post",
        dataset_path=str(data),
        context_size=128,
        store_batch_size_prompts=8,
        n_batches_in_buffer=8,
        train_batch_size_tokens=batch,
        training_tokens=batch * args.steps,
        checkpoint_path=None,
        output_path=str(tmp / "sweep"),
        logger=LoggingConfig(log_to_wandb=False),
        verbose=False,
    )
    sweep = SweepConfig(base=base, freq_coefficients=[0.5 * i for i in range(args.k)])

    start = time.perf_counter()
    SweepRunner(sweep, override_model=model).run()
    sweep_s = time.perf_counter() - start

    start = time.perf_counter()
    for cfg in sweep.variants().values():
        cfg.output_path = str(tmp / "separate" / Path(str(cfg.output_path)).name)
        FreqSAETrainingRunner(cfg, override_model=model).run()
    separate_s = time.perf_counter() - start

    tokens = batch * args.steps
    print(f"k={args.k} variants, {tokens} tokens each, d_sae={args.d_sae}, "
          f"{args.threads} thread(s)")  # fmt: skip
    print(f"{args.k} separate runs: {separate_s:.1f} s")
    print(f"one {args.k}-variant sweep: {sweep_s:.1f} s")
    print(f"ratio separate / sweep: {separate_s / sweep_s:.2f}x")


if __name__ == "__main__":
    main()
