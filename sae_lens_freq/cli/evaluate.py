"""``sae-lens-freq eval RUN [RUN ...]``: the paper's metrics of trained SAEs, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sae_lens_freq.evaluation.metrics import EVAL_FILENAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq eval",
        description=(
            "Evaluate SAEs with SAELens's run_evals on each run's own model, hook and "
            "dataset: KL-divergence score, CE-loss score, explained variance, cosine "
            "similarity, L0, MSE, plus the final training loss the run logged."
        ),
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_OR_CHECKPOINT",
        help="a runner output_path or a training checkpoint folder",
    )
    parser.add_argument(
        "--out",
        help=f"output JSON file (one run only); default RUN/{EVAL_FILENAME}",
    )
    parser.add_argument(
        "--model-path",
        help="local model folder to use instead of loading the run's model_name",
    )
    parser.add_argument(
        "--dataset", help="dataset path or name replacing the run's dataset_path"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--n-batches",
        type=int,
        default=10,
        help="batches of prompts for each group of metrics (default 10)",
    )
    parser.add_argument(
        "--batch-size-prompts",
        type=int,
        help="prompts per batch (default: the run's store_batch_size_prompts)",
    )
    parser.add_argument(
        "--include-special-tokens",
        action="store_true",
        help="also score BOS/EOS/PAD positions (SAELens leaves them out by default)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.out is not None and len(args.runs) > 1:
        print("--out takes one RUN; omit it to write RUN/eval.json", file=sys.stderr)
        return 2
    from sae_lens_freq.evaluation.metrics import (
        EvalSettings,
        evaluate_run,
        load_eval_model,
        read_run,
        write_eval,
    )

    try:
        settings = EvalSettings(
            n_eval_reconstruction_batches=args.n_batches,
            n_eval_sparsity_variance_batches=args.n_batches,
            batch_size_prompts=args.batch_size_prompts,
            dataset=args.dataset,
            model_path=args.model_path,
            device=args.device,
            exclude_special_tokens=not args.include_special_tokens,
        )
        runs = [read_run(path) for path in args.runs]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    models: dict[str, Any] = {}  # one model per model name, shared across runs
    for run in runs:
        key = args.model_path or (run.runner_cfg or run.metadata).get("model_name", "")
        if key not in models:
            models[key] = load_eval_model(run, settings)
        result = evaluate_run(run.path, settings, model=models[key])
        out = write_eval(result, args.out or Path(run.path) / EVAL_FILENAME)
        print(json.dumps({"run": str(run.path), **result["metrics"]}))
        print(f"wrote {out}", file=sys.stderr)
    return 0
