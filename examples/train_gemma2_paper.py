"""The paper's reference FreqSAE run on Gemma-2-2B (needs a GPU and Hub access).

Gemma-2-2B, ``blocks.19.hook_resid_post``, The Pile (uncopyrighted), context 128,
2048-token batches, lr 3e-4, lambda 0.04, beta 0.5, alpha 0.99, beta warm-up 1000
steps, 20M tokens, 16k features (SAEBench's standard width; the paper states none).
The same run from the shell::

    sae-lens-freq train --preset paper --device cuda --output_path runs/paper

Interrupt it with Ctrl-C (or a SIGTERM from a scheduler) and continue with
``sae-lens-freq train --resume <checkpoint folder printed on exit>``.
"""

from __future__ import annotations

from sae_lens import LanguageModelSAERunnerConfig, LoggingConfig

from sae_lens_freq import FreqWeightedTrainingSAEConfig
from sae_lens_freq.training import PAPER_PRESET, FreqSAETrainingRunner

SAE_FIELDS = (
    "d_in", "d_sae", "l1_coefficient", "freq_coefficient", "freq_ema_decay", "freq_warm_up_steps",
)  # fmt: skip


def paper_config(
    device: str = "cuda",
) -> LanguageModelSAERunnerConfig[FreqWeightedTrainingSAEConfig]:
    runner_fields = {
        k: v
        for k, v in PAPER_PRESET.items()
        if k not in SAE_FIELDS and k != "architecture"
    }
    return LanguageModelSAERunnerConfig(
        sae=FreqWeightedTrainingSAEConfig(**{k: PAPER_PRESET[k] for k in SAE_FIELDS}),
        **runner_fields,
        device=device,
        dtype="float32",
        autocast_lm=True,
        n_batches_in_buffer=64,
        n_checkpoints=5,
        checkpoint_path="runs/paper/checkpoints",
        output_path="runs/paper/sae",
        logger=LoggingConfig(
            log_to_wandb=True,
            wandb_project="freq-sae",
            wandb_log_frequency=30,
            eval_every_n_wandb_logs=20,
        ),
    )


if __name__ == "__main__":
    FreqSAETrainingRunner(paper_config()).run()
