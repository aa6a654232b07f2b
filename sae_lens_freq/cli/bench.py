"""``sae-lens-freq bench absorption``: the ground-truth absorption benchmark.

With no flags it runs the default job (8 contenders x 3 seeds, under 5 minutes on
2 CPU cores); ``--full`` runs the larger grid. The other flags shrink or reshape a
run (tests use them); invalid values are rejected before anything is trained.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from sae_lens_freq.cli.arguments import parse_numbers

BENCHMARKS = ("absorption",)

FLAGS = {
    # config field -> flag, to name the flag in validation errors
    "steps": "--steps",
    "seeds": "--seeds",
    "contenders": "--contenders",
    "freq_coefficients": "--freq-coefficients",
    "target_l0s": "--target-l0",
    "batch_size": "--batch-size",
    "eval_samples": "--eval-samples",
    "workers": "--workers",
    "max_calibration_runs": "--max-calibration-runs",
    "l1_coefficient_guess": "--l1-guess",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq bench",
        description="Benchmarks. `absorption`: SAEs trained through SAELens on "
        "synthetic activations with a known parent/child hierarchy, compared at "
        "equal L0 on absorption, MCC, explained variance and dead latents.",
    )
    parser.add_argument("benchmark", choices=BENCHMARKS, help="which benchmark to run")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the larger grid: 5 betas, target L0 3, 4 and 6 (~10-30 min)",
    )
    parser.add_argument("--out", default="bench-out/absorption", help="output folder")
    parser.add_argument("--steps", type=int, help="training steps per run (>= 10)")
    parser.add_argument("--seeds", type=int, help="number of seeds, 0..N-1 (>= 1)")
    parser.add_argument(
        "--contenders",
        help="comma-separated architectures: standard, freq_weighted, topk, "
        "batchtopk, matryoshka_batchtopk",
    )
    parser.add_argument(
        "--freq-coefficients", help="comma-separated FreqSAE betas (> -1)"
    )
    parser.add_argument("--target-l0", help="comma-separated target L0 values")
    parser.add_argument("--batch-size", type=int, help="samples per step (>= 1)")
    parser.add_argument("--eval-samples", type=int, help="held-out samples (>= 100)")
    parser.add_argument("--workers", type=int, help="parallel processes (>= 1)")
    parser.add_argument(
        "--max-calibration-runs", type=int, help="runs allowed to hit a target (>= 1)"
    )
    parser.add_argument(
        "--l1-guess",
        type=float,
        help="first l1_coefficient calibration tries (> 0); saves runs when --steps "
        "moves the answer (shorter runs need a larger lambda)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides from the flags that were given; raises ValueError naming a flag."""
    out: dict[str, Any] = {}
    for field in (
        "steps",
        "batch_size",
        "eval_samples",
        "workers",
        "max_calibration_runs",
    ):
        if getattr(args, field) is not None:
            out[field] = getattr(args, field)
    if args.l1_guess is not None:
        out["l1_coefficient_guess"] = args.l1_guess
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be an integer >= 1, got {args.seeds}")
        out["seeds"] = tuple(range(args.seeds))
    if args.contenders is not None:
        out["contenders"] = tuple(_split(args.contenders))
    if args.freq_coefficients is not None:
        out["freq_coefficients"] = tuple(
            parse_numbers(args.freq_coefficients, "--freq-coefficients")
        )
    if args.target_l0 is not None:
        out["target_l0s"] = tuple(parse_numbers(args.target_l0, "--target-l0"))
    return out


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    from sae_lens_freq.evaluation.absorption.config import default_config, full_config

    make = full_config if args.full else default_config
    try:
        cfg = make(**overrides_from(args))
    except ValueError as err:
        parser.error(_name_flag(str(err)))
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    torch.set_num_threads(1)
    from sae_lens_freq.evaluation.absorption.bench import run_benchmark

    command = " ".join(["sae-lens-freq bench", *argv])
    run_benchmark(cfg, args.out, command=command, progress=not args.no_progress)
    print(f"results: {os.path.join(args.out, 'results.json')}", file=sys.stderr)
    return 0


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _name_flag(message: str) -> str:
    for field, flag in FLAGS.items():
        if message.startswith(field):
            return f"{flag}: {message}"
    return message
