"""The in-training evaluator adds the paper's KL-divergence score."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sae_lens.training.activation_scaler import ActivationScaler
from transformer_lens import HookedTransformer

from sae_lens_freq import FreqWeightedTrainingSAE
from sae_lens_freq.training.evaluator import KLScoreEvaluator
from sae_lens_freq.training.presets import tiny_offline_config
from sae_lens_freq.training.runner import FreqSAETrainingRunner


def _identity_sae(sae: FreqWeightedTrainingSAE) -> None:
    """Make ``sae`` reconstruct exactly: relu(x) - relu(-x) = x."""
    d_in = sae.cfg.d_in
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()


def test_kl_score_is_one_for_a_perfect_reconstruction_and_lower_otherwise(
    tiny_model: HookedTransformer, text_dataset_dir: Path, tmp_path: Path
) -> None:
    cfg = tiny_offline_config(str(text_dataset_dir), output_path=str(tmp_path / "o"))
    cfg.sae.d_sae = 2 * cfg.sae.d_in
    runner = FreqSAETrainingRunner(cfg, override_model=tiny_model)
    assert isinstance(runner.evaluator, KLScoreEvaluator)
    sae = runner.sae
    assert isinstance(sae, FreqWeightedTrainingSAE)
    sae.cfg.metadata.hook_name = cfg.hook_name  # run() sets this before training
    scaler = ActivationScaler()

    _identity_sae(sae)
    perfect = runner.evaluator(sae, runner.activations_store, scaler)
    kl = perfect["model_behavior_preservation"]["kl_div_score"]
    assert kl == pytest.approx(1.0, abs=1e-4)
    assert perfect["model_performance_preservation"]["ce_loss_score"] == pytest.approx(
        1.0, abs=1e-3
    )

    with torch.no_grad():
        # drop the positive half of half the directions (a pure rescale would not
        # do: the model RMS-normalises the residual stream)
        sae.W_dec[: sae.cfg.d_in // 2].zero_()
    worse = runner.evaluator(sae, runner.activations_store, scaler)
    assert worse["model_behavior_preservation"]["kl_div_score"] < 0.999
