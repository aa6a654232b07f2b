"""``sae-lens-freq saebench``: run SAEBench evals on checkpoints (see ``run_saebench``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EVAL_NAMES = ("absorption", "scr", "tpp", "core", "sparse_probing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq saebench",
        description=(
            "Export each checkpoint as SAEBench expects (standard SAE, unit-norm "
            "decoder) and run SAEBench's own evals; every file goes under --out."
        ),
    )
    parser.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CHECKPOINT",
        help="SAE folder: exported SAE, SAELens runner output or training checkpoint",
    )
    parser.add_argument(
        "--evals",
        default=",".join(EVAL_NAMES),
        help=f"comma-separated evals from {', '.join(EVAL_NAMES)} (default: all)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--model",
        help=(
            "hub model name SAEBench loads (default: the SAEs' metadata.model_name); "
            "with --model-path, the name the local model is recorded under"
        ),
    )
    parser.add_argument(
        "--model-path",
        type=Path,
        help="local model folder (sae_lens_freq.models.save_hooked_transformer)",
    )
    parser.add_argument("--device", help="torch device (default: cuda if available)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder with local copies of SAEBench's datasets under their hub paths",
    )
    parser.add_argument(
        "--force", action="store_true", help="rerun existing results, clear caches"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="EVAL.FIELD=VALUE",
        help="change an eval setting, e.g. absorption.llm_batch_size=4 (JSON values)",
    )
    return parser


def parse_settings(settings: list[str]) -> dict[str, dict[str, Any]]:
    """``["core.context_size=64"]`` -> ``{"core": {"context_size": 64}}``."""
    overrides: dict[str, dict[str, Any]] = {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        eval_name, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise ValueError(f"--set {setting!r} must look like EVAL.FIELD=VALUE")
        if eval_name not in EVAL_NAMES:
            raise ValueError(
                f"--set {setting!r}: eval {eval_name!r} is not one of "
                f"{', '.join(EVAL_NAMES)}"
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a plain string, e.g. a dataset path
        overrides.setdefault(eval_name, {})[field] = value
    return overrides


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = parse_settings(args.settings)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from sae_lens_freq.evaluation.saebench import SaeBenchError, run_saebench

    try:
        model = None
        if args.model_path is not None:
            from sae_lens_freq.models import load_hooked_transformer

            model = load_hooked_transformer(
                args.model_path, device=args.device or "cpu"
            )
        run_saebench(
            [str(path) for path in args.checkpoints],
            args.evals,
            args.out,
            model=model,
            model_name=args.model,
            device=args.device,
            force=args.force,
            data_dir=args.data_dir,
            **overrides,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SaeBenchError as err:
        print(f"SAEBench failed: {err}", file=sys.stderr)
        return 1
    print((args.out / "summary.md").read_text(), end="")
    print(f"results: {args.out / 'results'}  summary: {args.out / 'summary.json'}")
    return 0
