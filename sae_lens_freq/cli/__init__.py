"""``sae-lens-freq`` command line: one module per subcommand, loaded on demand.

Each ``sae_lens_freq/cli/<module>.py`` exposes ``main(argv: list[str]) -> int``.
Importing them lazily keeps ``sae-lens-freq --help`` fast (no torch import).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "Train an SAE through SAELens's runner (FreqSAE by default)."),
    "bench": (
        "bench",
        "Benchmarks; `bench absorption` is the ground-truth absorption benchmark.",
    ),
    "eval": (
        "evaluate",
        "SAELens metrics (KL/CE score, explained variance, L0, ...) of a run.",
    ),
    "report": ("report", "The paper's Table 1 and training curves across runs."),
    "saebench": (
        "saebench",
        "Run SAEBench evals (absorption, scr, tpp, core, sparse_probing).",
    ),
    "publish": (
        "publish",
        "Upload exported SAEs and a model card to the HuggingFace Hub.",
    ),
    "sweep": ("sweep", "Train several variants on one shared activation stream."),
}


def _usage() -> str:
    lines = ["usage: sae-lens-freq COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "`sae-lens-freq COMMAND --help` describes each command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from sae_lens_freq import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"unknown command {name!r}; allowed: {', '.join(COMMANDS)}\n",
            file=sys.stderr,
        )
        print(_usage(), file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"sae_lens_freq.cli.{COMMANDS[name][0]}")
    except ModuleNotFoundError as err:
        if err.name == f"sae_lens_freq.cli.{COMMANDS[name][0]}":
            print(f"command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    return int(module.main(rest) or 0)
