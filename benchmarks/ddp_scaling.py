"""Data-parallel throughput: training tokens/s with 1, 2, ... ranks (torchrun).

CPU (gloo), the tiny offline model, one thread per rank::

    .venv/bin/python benchmarks/ddp_scaling.py --nprocs 1,2

GPU machine (NCCL, one GPU per rank; the same script, a real model folder)::

    .venv/bin/python benchmarks/ddp_scaling.py --device cuda --nprocs 1,2,4,8 \\
        --model-path MODEL_DIR --hook-name blocks.12.hook_resid_post \\
        --dataset-path DATA --d-sae 16384 --batch 4096 --steps 200

Each rank count is one ``torchrun --standalone`` launch of this file running
``run_data_parallel`` with the same *global* batch; rank 0 reports the global
training tokens/s of ``fit()`` (model loading excluded). Ratios are against the
first rank count, measured in this one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nprocs", default="1,2", help="rank counts to compare")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--model-path", help="local model folder (default: tiny offline model)"
    )
    p.add_argument("--hook-name", default="blocks.1.hook_resid_post")
    p.add_argument("--dataset-path", help="text dataset (default: offline corpus)")
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--batch", type=int, default=2048, help="global batch, tokens")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--context-size", type=int, default=128)
    p.add_argument("--result", help=argparse.SUPPRESS)  # set for the workers
    return p.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    import torch
    from sae_lens import LanguageModelSAERunnerConfig
    from sae_lens.config import LoggingConfig

    from sae_lens_freq import FreqWeightedTrainingSAEConfig
    from sae_lens_freq.models import load_hooked_transformer
    from sae_lens_freq.training import distributed
    from sae_lens_freq.training.distributed import run_data_parallel

    torch.set_num_threads(1)
    device = "cuda" if args.device == "cuda" else "cpu"
    model = load_hooked_transformer(args.model_path, device=device)
    cfg = LanguageModelSAERunnerConfig(
        sae=FreqWeightedTrainingSAEConfig(d_in=model.cfg.d_model, d_sae=args.d_sae),
        model_name=args.model_path,
        hook_name=args.hook_name,
        dataset_path=args.dataset_path,
        context_size=args.context_size,
        store_batch_size_prompts=8,
        n_batches_in_buffer=max(8, 2 * args.batch // args.context_size),
        train_batch_size_tokens=args.batch,
        training_tokens=args.batch * args.steps,
        checkpoint_path=None,
        output_path=None,
        logger=LoggingConfig(log_to_wandb=False),
        device=device,
        verbose=False,
    )
    timings: list[float] = []
    original_fit = distributed.DataParallelSAETrainer.fit

    def timed_fit(self: distributed.DataParallelSAETrainer) -> object:
        start = time.perf_counter()
        result = original_fit(self)
        if device == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
        return result

    distributed.DataParallelSAETrainer.fit = timed_fit  # type: ignore[method-assign]
    run_data_parallel(cfg, override_model=model)
    if int(os.environ["RANK"]) == 0:
        tokens = args.batch * args.steps
        Path(args.result).write_text(json.dumps({"tokens_per_s": tokens / timings[0]}))


def main() -> None:
    args = parse_args(sys.argv[1:])
    if args.result is not None:
        worker(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="ddp_scaling_"))
    extra: list[str] = []
    if args.model_path is None:
        from sae_lens_freq.models import save_hooked_transformer
        from sae_lens_freq.offline import build_tiny_gemma2, train_tokenizer

        model = build_tiny_gemma2(train_tokenizer(tmp / "tokenizer"))
        extra += ["--model-path", str(save_hooked_transformer(model, tmp / "model"))]
    if args.dataset_path is None:
        from sae_lens_freq.offline import write_text_dataset

        extra += ["--dataset-path", str(write_text_dataset(tmp / "data", repeats=16))]
    counts = [int(n) for n in args.nprocs.split(",")]
    rates: dict[int, float] = {}
    for n in counts:
        result = tmp / f"result_{n}.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(n), __file__, *sys.argv[1:], *extra,
               "--result", str(result)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        rates[n] = json.loads(result.read_text())["tokens_per_s"]
    print(f"device={args.device} d_sae={args.d_sae} global batch={args.batch} "
          f"steps={args.steps}")  # fmt: skip
    for n in counts:
        ratio = rates[n] / rates[counts[0]]
        print(f"{n} rank(s): {rates[n]:.0f} tokens/s  ({ratio:.2f}x vs {counts[0]})")


if __name__ == "__main__":
    main()
