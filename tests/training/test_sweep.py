"""Sweeps: several variants on one activation stream, each with a single run's outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from sae_lens import LanguageModelSAERunnerConfig
from transformer_lens import HookedTransformer

from sae_lens_freq import load_feature_freq
from sae_lens_freq.cli import main as cli_main
from sae_lens_freq.cli.arguments import parse_numbers
from sae_lens_freq.evaluation.report import summarize_runs
from sae_lens_freq.training import FreqSAETrainingRunner, read_metrics
from sae_lens_freq.training.presets import tiny_offline_config
from sae_lens_freq.training.sweep import SweepConfig, SweepRunner

HOOK = "blocks.1.hook_resid_post"


def build_base(
    data_dir: Path, out: Path, **overrides: Any
) -> LanguageModelSAERunnerConfig[Any]:
    fields: dict[str, Any] = dict(
        l1_coefficient=0.04,
        model_name="tiny",
        hook_name=HOOK,
        streaming=True,
        n_batches_in_buffer=4,
        activations_mixing_fraction=0.0,
        training_tokens=64 * 16,
        lr=1e-3,
        output_path=str(out),
        wandb_log_frequency=4,
        seed=3,
    )
    return tiny_offline_config(str(data_dir), **{**fields, **overrides})


def test_sweep_variant_equals_a_single_run_of_its_config(
    tiny_model: HookedTransformer, text_dataset_dir: Path, tmp_path: Path
) -> None:
    sweep = SweepConfig(
        base=build_base(text_dataset_dir, tmp_path / "sweep"),
        freq_coefficients=[0.0, 2.0],
    )
    saes = SweepRunner(sweep, override_model=tiny_model).run()
    first, second = sweep.variants()
    single_cfg = sweep.variants()[first]
    single_cfg.output_path = str(tmp_path / "single")
    single = FreqSAETrainingRunner(single_cfg, override_model=tiny_model).run()
    for name, tensor in single.state_dict().items():
        torch.testing.assert_close(
            saes[first].state_dict()[name], tensor, atol=1e-6, rtol=0
        )
    assert read_metrics(tmp_path / "sweep" / first) == read_metrics(tmp_path / "single")
    # beta changed the training: the variants really differ.
    assert not torch.allclose(saes[first].W_enc, saes[second].W_enc)


def test_cli_sweep_writes_a_reportable_folder_per_variant(
    tiny_model_dir: Path, text_dataset_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    code = cli_main(
        ["sweep", "--model-path", str(tiny_model_dir), "--hook-name", HOOK,
         "--dataset-path", str(text_dataset_dir), "--d-sae", "128",
         "--freq-coefficients", "0,1", "--l1-coefficients", "0.04",
         "--include-standard", "--training-tokens", "1024",
         "--train-batch-size-tokens", "64", "--context-size", "32",
         "--store-batch-size-prompts", "4", "--n-batches-in-buffer", "4",
         "--freq-warm-up-steps", "4", "--wandb-log-frequency", "4",
         "--output-path", str(out), "--checkpoint-path", str(tmp_path / "ckpt"),
         "--n-checkpoints", "1"]
    )  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["freq_b0_a0.99_l0.04", "freq_b1_a0.99_l0.04", "standard_l0.04"]
    for name in names:
        folder = out / name
        runner_cfg = json.loads((folder / "runner_cfg.json").read_text())
        assert runner_cfg["output_path"] == str(folder)
        records = read_metrics(folder)
        assert [r["step"] for r in records] == [3, 7, 11, 15]
        assert records[-1]["n_training_tokens"] == 1024
        assert (
            json.loads((folder / "cfg.json").read_text())["architecture"] == "standard"
        )
    beta1 = json.loads((out / "freq_b1_a0.99_l0.04" / "runner_cfg.json").read_text())
    assert beta1["sae"]["freq_coefficient"] == 1.0
    assert load_feature_freq(out / "freq_b1_a0.99_l0.04").max() > 0
    # `sae-lens-freq report` reads the variants.
    rows = summarize_runs([out / n for n in names])
    assert [r.training_tokens for r in rows] == [1024] * 3
    assert len({r.label for r in rows}) == 3
    # SAELens's multi-SAE checkpoint: one subfolder per variant.
    (run_id,) = (tmp_path / "ckpt").iterdir()
    (checkpoint,) = run_id.iterdir()
    assert sorted(p.name for p in checkpoint.iterdir() if p.is_dir()) == names


def test_bad_sweep_inputs_raise_value_errors(
    text_dataset_dir: Path, tmp_path: Path
) -> None:
    base = build_base(text_dataset_dir, tmp_path)
    with pytest.raises(ValueError, match="freq_ema_decay must be"):
        SweepConfig(base=base, freq_ema_decays=[0.9, 1.5])
    with pytest.raises(ValueError, match="freq_coefficients has repeated"):
        SweepConfig(base=base, freq_coefficients=[0.5, 0.5])
    with pytest.raises(ValueError, match="l1_coefficients must be"):
        parse_numbers("0.1,abc", "l1_coefficients")
    with pytest.raises(ValueError, match=r"base\.output_path"):
        SweepConfig(base=build_base(text_dataset_dir, tmp_path, output_path=None))
    assert parse_numbers("0, 0.5,1", "x") == [0.0, 0.5, 1.0]


@pytest.mark.slow
def test_each_variant_is_its_own_wandb_run(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sae_lens_freq.evaluation.run_logs import (
        read_wandb_config,
        read_wandb_offline_run,
    )

    monkeypatch.setenv("WANDB_MODE", "offline")
    base = build_base(
        text_dataset_dir,
        tmp_path,
        log_to_wandb=True,
        wandb_project="p",
        training_tokens=64 * 8,
    )
    sweep = SweepConfig(base=base, freq_coefficients=[0.0, 1.0])
    SweepRunner(sweep, override_model=tiny_model).run()
    for name, cfg in sweep.variants().items():
        (run_dir,) = (tmp_path / name / "wandb").glob("offline-run-*")
        rows = read_wandb_offline_run(run_dir)
        assert [r["step"] for r in rows] == [3.0, 7.0]
        plain = read_metrics(tmp_path / name)
        assert rows[-1]["losses/overall_loss"] == pytest.approx(
            plain[-1]["losses/overall_loss"]
        )
        config = read_wandb_config(run_dir)
        assert config["output_path"] == cfg.output_path
        # nested entries come back whole, not as None
        assert config["sae"]["freq_coefficient"] == cfg.sae.freq_coefficient
