"""Train a FreqSAE end to end with no downloads (< 1 min on a laptop CPU).

Builds the offline stand-ins of ``sae_lens_freq.offline`` (a BPE tokenizer trained on
the Python docs, a random-weight Gemma-2-shaped model, a local text dataset), trains
through ``FreqSAETrainingRunner`` and prints the last metrics record.

    python examples/train_offline_tiny.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from sae_lens_freq import load_feature_freq
from sae_lens_freq.offline import build_tiny_gemma2, train_tokenizer, write_text_dataset
from sae_lens_freq.training import FreqSAETrainingRunner, read_metrics
from sae_lens_freq.training.presets import tiny_offline_config


def main(out_dir: Path) -> None:
    torch.set_num_threads(2)
    tokenizer_dir = train_tokenizer(out_dir / "tokenizer")
    model = build_tiny_gemma2(tokenizer_dir)
    dataset_dir = write_text_dataset(out_dir / "text", repeats=4)
    cfg = tiny_offline_config(
        str(dataset_dir),
        output_path=str(out_dir / "sae"),
        checkpoint_path=str(out_dir / "checkpoints"),
        n_checkpoints=2,
        train_batch_size_tokens=256,
        n_batches_in_buffer=16,
        training_tokens=256 * 100,
        d_sae=256,
        l1_coefficient=1.0,
        freq_coefficient=0.5,
        freq_warm_up_steps=50,
        wandb_log_frequency=5,
        eval_every_n_wandb_logs=10,
    )
    FreqSAETrainingRunner(cfg, override_model=model).run()

    last = read_metrics(out_dir / "sae")[-1]
    freq = load_feature_freq(out_dir / "sae")
    print(f"SAE written to {cfg.output_path}")
    for key in (
        "losses/mse_loss",
        "metrics/l0",
        "metrics/explained_variance",
        "metrics/freq/feature_freq_mean",
        "model_performance_preservation/ce_loss_score",
    ):
        print(f"  {key}: {last.get(key)}")
    print(
        f"  features firing on > 1% of tokens: {int((freq > 0.01).sum())}/{freq.numel()}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
