"""``sae-lens-freq train``: SAELens's training command line, FreqSAE by default.

Every flag of SAELens's own ``llm_sae_training_runner`` command works (the parser
is built the same way, from SAELens's runner config and its training-SAE registry,
with this plugin registered first); ``--architecture`` defaults to
``freq_weighted``. Added flags:

- ``--preset paper``: the paper's reference run (``sae_lens_freq.training.presets``);
  flags given explicitly override preset values.
- ``--model-path DIR``: a local TransformerLens model folder
  (``sae_lens_freq.models``), used instead of loading ``--model_name``;
  ``--d_in`` defaults to its ``d_model``.
- ``--resume DIR``: continue from checkpoint folder ``DIR`` with the config saved
  in it (only ``--model-path`` may be given with it).

Under ``torchrun`` (``WORLD_SIZE`` > 1) training runs data-parallel through
``sae_lens_freq.training.distributed.run_data_parallel``. SIGINT/SIGTERM leave a
checkpoint; the exit status is then ``128 + signal``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, make_dataclass
from functools import partial
from pathlib import Path
from typing import Any

PLUGIN_FLAGS = ("--preset", "--model-path", "--resume")


@dataclass
class TrainCommand:
    """A parsed ``train`` command line.

    Args:
        cfg: The SAELens runner config to train.
        model_path: Local model folder to train on, or None to load ``cfg.model_name``.
    """

    cfg: Any
    model_path: Path | None = None


def _plugin_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-lens-freq train",
        add_help=False,
        allow_abbrev=False,
        description="Train an SAE through SAELens (FreqSAE by default).",
    )
    parser.add_argument(
        "--preset",
        choices=_preset_names(),
        help="fill a named setup (explicit flags override it)",
    )
    parser.add_argument(
        "--model-path",
        type=Path,
        help="local TransformerLens model folder (see sae_lens_freq.models)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="checkpoint folder to continue from, with the config saved in it",
    )
    parser.add_argument("-h", "--help", action="store_true")
    return parser


def _preset_names() -> list[str]:
    from sae_lens_freq.training.presets import PRESETS

    return list(PRESETS)


def sae_lens_parser() -> Any:
    """SAELens's runner parser: its config fields plus ``--architecture`` over the registry."""
    from sae_lens.config import LanguageModelSAERunnerConfig
    from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY
    from sae_lens.saes.sae import TrainingSAEConfig
    from simple_parsing import ArgumentParser, subgroups

    from sae_lens_freq.registration import register

    register()
    sae_choices: dict[
        str, TrainingSAEConfig | type[TrainingSAEConfig] | partial[TrainingSAEConfig]
    ] = {
        name: partial(config_class, d_in=512, d_sae=1024)
        for name, (_, config_class) in SAE_TRAINING_CLASS_REGISTRY.items()
    }
    cli_config_class = make_dataclass(
        "CommandLineRunnerConfig",
        [
            (
                "sae",
                TrainingSAEConfig,
                subgroups(sae_choices, default="freq_weighted", alias="--architecture"),
            )
        ],
        bases=(LanguageModelSAERunnerConfig,),
    )
    parser = ArgumentParser(prog="sae-lens-freq train", exit_on_error=False)
    parser.add_arguments(cli_config_class, dest="cfg")
    return parser


def parse_train_args(argv: list[str]) -> TrainCommand | None:
    """Parse a ``train`` command line; None after printing ``--help``."""
    plugin, rest = _plugin_parser().parse_known_args(argv)
    if plugin.help:
        _plugin_parser().print_help()
        print("\nSAELens runner options (all accepted):\n")
        sae_lens_parser().print_help()
        return None
    if plugin.model_path is not None:
        _check_model_path(plugin.model_path)
    if plugin.resume is not None:
        if rest or plugin.preset:
            raise ValueError(
                f"--resume takes the config saved in the checkpoint; got extra "
                f"arguments {([f'--preset {plugin.preset}'] if plugin.preset else []) + rest}"
                " (only --model-path may be added)"
            )
        return TrainCommand(
            cfg=_config_from_checkpoint(plugin.resume), model_path=plugin.model_path
        )
    args: list[str] = []
    if plugin.preset is not None:
        from sae_lens_freq.training.presets import preset_argv, preset_values

        architecture = _flag_value(rest, "--architecture") or _flag_value(rest, "--sae")
        wanted = preset_values(plugin.preset)["architecture"]
        if architecture not in (None, wanted):
            raise ValueError(
                f"--preset {plugin.preset} is a {wanted} setup; --architecture "
                f"{architecture} is not allowed with it"
            )
        args += preset_argv(plugin.preset)
    if plugin.model_path is not None and _flag_value(rest, "--d_in") is None:
        model_cfg = json.loads((plugin.model_path / "config.json").read_text())
        args += ["--d_in", str(model_cfg["d_model"])]
    if plugin.model_path is not None and _flag_value(rest, "--model_name") is None:
        # Recorded in the run, so eval/saebench/resume find the local model again.
        args += ["--model_name", str(plugin.model_path.resolve())]
    cfg = sae_lens_parser().parse_args(args + rest).cfg
    return TrainCommand(cfg=cfg, model_path=plugin.model_path)


def main(argv: list[str]) -> int:
    try:
        command = parse_train_args(argv)
    except (ValueError, argparse.ArgumentError) as err:
        print(f"sae-lens-freq train: error: {err}", file=sys.stderr)
        return 2
    if command is None:
        return 0
    cfg = command.cfg
    data_parallel = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if data_parallel:
        # Join the job first: it pins this rank's GPU before the model is loaded.
        from sae_lens_freq.training.distributed import init_distributed

        init_distributed()
    from sae_lens_freq.models import is_local_model_folder, load_hooked_transformer

    model = None
    if command.model_path is None and is_local_model_folder(cfg.model_name):
        command.model_path = Path(cfg.model_name)  # a resumed local-model run
    if command.model_path is not None:
        model = load_hooked_transformer(
            command.model_path, device=cfg.llm_device or cfg.device
        )
    from sae_lens_freq.training.interrupts import TrainingInterrupted

    try:
        if data_parallel:
            _run_distributed(cfg, model)
        else:
            from sae_lens_freq.training.runner import FreqSAETrainingRunner

            FreqSAETrainingRunner(cfg, override_model=model).run()
    except TrainingInterrupted as interrupted:
        where = interrupted.checkpoint_path
        print(
            f"interrupted; resume with: sae-lens-freq train --resume {where}"
            if where
            else "interrupted; no checkpoint written (set --checkpoint_path)",
            file=sys.stderr,
        )
        return interrupted.exit_code
    if cfg.output_path:
        print(f"SAE written to {cfg.output_path}")
    return 0


def _run_distributed(cfg: Any, model: Any) -> None:
    import torch.distributed as dist

    from sae_lens_freq.training.distributed import run_data_parallel

    try:
        run_data_parallel(cfg, override_model=model)
    finally:
        dist.destroy_process_group()


def _config_from_checkpoint(folder: Path) -> Any:
    from sae_lens.config import LanguageModelSAERunnerConfig
    from sae_lens.constants import RUNNER_CFG_FILENAME, TRAINER_STATE_FILENAME

    from sae_lens_freq.registration import register

    register()
    if (
        not (folder / RUNNER_CFG_FILENAME).is_file()
        or not (folder / TRAINER_STATE_FILENAME).is_file()
    ):
        raise ValueError(
            f"--resume {str(folder)!r} is not a checkpoint folder: it needs "
            f"{RUNNER_CFG_FILENAME} and {TRAINER_STATE_FILENAME}"
        )
    saved = json.loads((folder / RUNNER_CFG_FILENAME).read_text())
    saved["resume_from_checkpoint"] = str(folder)
    return LanguageModelSAERunnerConfig.from_dict(saved)


def _check_model_path(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ValueError(
            f"--model-path {str(path)!r} is not a local model folder (no config.json; "
            "write one with sae_lens_freq.models.save_hooked_transformer)"
        )


def _flag_value(argv: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value
