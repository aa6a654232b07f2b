"""``sae-lens-freq publish CHECKPOINT ... --repo OWNER/NAME``: SAEs + model card to the Hub."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq publish",
        description=(
            "Export SAEs as plain SAELens `standard` SAEs (feature_freq, eval and "
            "SAEBench JSONs included), write a model card and upload them through "
            "SAELens's upload_saes_to_huggingface. The token comes from HF_TOKEN or "
            "`hf auth login` and is never printed or written."
        ),
    )
    parser.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CHECKPOINT",
        help="a runner output_path or a training checkpoint folder",
    )
    parser.add_argument("--repo", required=True, help="Hub repository, OWNER/NAME")
    parser.add_argument(
        "--sae-id",
        action="append",
        dest="sae_ids",
        metavar="ID",
        help="folder of the SAE in the repo; once per CHECKPOINT, in order "
        "(default: the hook name, plus architecture and beta for several)",
    )
    parser.add_argument("--revision", default="main", help="branch (default main)")
    parser.add_argument(
        "--dry-run",
        metavar="DIR",
        help="write the exact repository layout into DIR and upload nothing",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from sae_lens_freq.publishing.hub import publish

    try:
        staged = publish(
            args.checkpoints,
            repo_id=args.repo,
            sae_ids=args.sae_ids,
            dry_run_dir=args.dry_run,
            revision=args.revision,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for s in staged:
        print(f"{s.sae_id}\t<- {s.source}")
    if args.dry_run:
        print(f"dry run: repository layout written to {args.dry_run}")
    else:
        print(f"uploaded {len(staged)} SAE(s) to {args.repo}")
    return 0
