"""``sae-lens-freq report RUN ...``: the paper's Table 1 (markdown) and training curves."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq report",
        description=(
            "Put several runs into the paper's Table 1 layout (markdown, with metrics "
            "from each run's eval.json) and plot the training curves they logged "
            "(metrics.jsonl or W&B offline runs) against tokens."
        ),
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run or checkpoint folders"
    )
    parser.add_argument(
        "--label",
        action="append",
        dest="labels",
        default=[],
        metavar="NAME",
        help="row name, once per RUN in order (default: from architecture and beta)",
    )
    parser.add_argument(
        "--out", default="report", help="output folder (default ./report)"
    )
    parser.add_argument(
        "--wandb-dir",
        action="append",
        dest="wandb_dirs",
        default=[],
        metavar="DIR",
        help="a WANDB_DIR holding offline runs of these runs (searched by output_path)",
    )
    parser.add_argument("--title", default="Results", help="report title")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from sae_lens_freq.evaluation.report import summarize_runs, write_report

    try:
        rows = summarize_runs(args.runs, args.labels, args.wandb_dirs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = write_report(rows, args.out, title=args.title)
    print(paths["report"].read_text())
    print(
        f"wrote {paths['report']}, {paths['table']}, {paths['curves']}", file=sys.stderr
    )
    return 0
