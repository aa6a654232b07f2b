"""Named training setups: ``--preset NAME`` on the command line, or ``preset_config``.

``paper`` is the FreqSAE paper's reference run. The paper states no dictionary
width; ``d_sae`` 16384 is SAEBench's standard "16k" width (override it freely).
"""

from __future__ import annotations

from typing import Any

PAPER_PRESET: dict[str, Any] = {
    # model and data
    "model_name": "gemma-2-2b",
    "hook_name": "blocks.19.hook_resid_post",
    "dataset_path": "monology/pile-uncopyrighted",
    "context_size": 128,
    "streaming": True,
    # optimisation
    "train_batch_size_tokens": 2048,
    "lr": 3e-4,
    "training_tokens": 20_000_000,
    # the SAE
    "architecture": "freq_weighted",
    "d_in": 2304,
    "d_sae": 16384,
    "l1_coefficient": 0.04,
    "freq_coefficient": 0.5,
    "freq_ema_decay": 0.99,
    "freq_warm_up_steps": 1000,
}
"""The reference run, as command-line field names (flat: runner and SAE fields)."""

PRESETS: dict[str, dict[str, Any]] = {"paper": PAPER_PRESET}


def preset_values(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s values; ``ValueError`` for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is unknown; allowed: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def preset_argv(name: str) -> list[str]:
    """Preset ``name`` as command-line flags, to be placed *before* the user's own.

    argparse keeps the last value of a repeated flag, so anything the user passes
    overrides the preset.
    """
    argv: list[str] = []
    for key, value in preset_values(name).items():
        argv += [f"--{key}", str(value)]
    return argv


def tiny_offline_config(
    dataset_path: str,
    hook_name: str = "blocks.1.hook_resid_post",
    d_in: int = 64,
    **overrides: Any,
) -> Any:
    """A runner config sized for the offline tiny model (``sae_lens_freq.offline``): seconds on a CPU.

    ``overrides`` are runner fields, or SAE fields (``d_sae``, ``l1_coefficient``,
    ``freq_coefficient``, ...) which go to the ``FreqWeightedTrainingSAEConfig``.
    W&B is off and nothing is checkpointed unless overridden.
    """
    from dataclasses import fields

    from sae_lens import LanguageModelSAERunnerConfig, LoggingConfig

    from sae_lens_freq.saes.freq_weighted_sae import FreqWeightedTrainingSAEConfig

    sae_names = {f.name for f in fields(FreqWeightedTrainingSAEConfig)}
    sae_fields = {
        "d_in": d_in,
        "d_sae": 128,
        "l1_coefficient": 1.0,
        "freq_warm_up_steps": 4,
    }
    sae_fields.update({k: v for k, v in overrides.items() if k in sae_names})
    logger_names = {f.name for f in fields(LoggingConfig)}
    logger_fields = {
        "log_to_wandb": False,
        "wandb_log_frequency": 2,
        "eval_every_n_wandb_logs": 1000,
    }
    logger_fields.update({k: v for k, v in overrides.items() if k in logger_names})
    runner_fields: dict[str, Any] = {
        "model_name": "tiny-gemma2-offline",
        "hook_name": hook_name,
        "dataset_path": dataset_path,
        "streaming": False,
        "context_size": 32,
        "store_batch_size_prompts": 4,
        "n_batches_in_buffer": 8,
        "train_batch_size_tokens": 64,
        "training_tokens": 64 * 40,
        "n_eval_batches": 1,
        "eval_batch_size_prompts": 2,
        "checkpoint_path": None,
        "verbose": False,
        "device": "cpu",
    }
    runner_fields.update(
        {
            k: v
            for k, v in overrides.items()
            if k not in sae_names and k not in logger_names
        }
    )
    return LanguageModelSAERunnerConfig(
        sae=FreqWeightedTrainingSAEConfig(**sae_fields),
        logger=LoggingConfig(**logger_fields),
        **runner_fields,
    )
