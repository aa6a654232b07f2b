"""Training from SAELens's activation cache: same SAE as live, several epochs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from sae_lens import LanguageModelSAERunnerConfig
from transformer_lens import HookedTransformer

from sae_lens_freq import load_feature_freq
from sae_lens_freq.training import FreqSAETrainingRunner, read_metrics
from sae_lens_freq.training.cached_activations import (
    cache_activations,
    cached_tokens,
    cached_training_config,
)
from sae_lens_freq.training.presets import tiny_offline_config

CONTEXT = 32
PROMPTS = 4
N_CACHED = 2048  # 4 shards of 4 LLM batches of 4 x 32 tokens
SHARD_GB = 4 * PROMPTS * CONTEXT * 64 * 4 / 1e9


def build_cfg(
    data_dir: Path, out: Path, training_tokens: int = N_CACHED
) -> LanguageModelSAERunnerConfig[Any]:
    return tiny_offline_config(
        str(data_dir),
        l1_coefficient=0.04,
        model_name="tiny",
        is_dataset_tokenized=False,
        streaming=True,
        context_size=CONTEXT,
        store_batch_size_prompts=PROMPTS,
        n_batches_in_buffer=4,
        activations_mixing_fraction=0.0,
        training_tokens=training_tokens,
        lr=1e-3,
        output_path=str(out),
        wandb_log_frequency=4,
        seed=7,
    )


@pytest.fixture(scope="module")
def cache_dir(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    root = tmp_path_factory.mktemp("cache")
    cfg = build_cfg(text_dataset_dir, root / "unused")
    return cache_activations(
        cfg,
        root / "acts",
        N_CACHED,
        model=tiny_model,
        shuffle=False,
        buffer_size_gb=SHARD_GB,
    )


def test_cache_holds_the_requested_tokens(
    cache_dir: Path, text_dataset_dir: Path
) -> None:
    assert cached_tokens(cache_dir, build_cfg(text_dataset_dir, cache_dir)) == N_CACHED


def test_sae_trained_from_cache_equals_sae_trained_live(
    cache_dir: Path,
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
) -> None:
    live_cfg = build_cfg(text_dataset_dir, tmp_path / "live")
    live = FreqSAETrainingRunner(live_cfg, override_model=tiny_model).run()
    cached_cfg = cached_training_config(
        build_cfg(text_dataset_dir, tmp_path / "cached"), cache_dir, epochs=1
    )
    assert cached_cfg.training_tokens == live_cfg.training_tokens
    cached = FreqSAETrainingRunner(cached_cfg, override_model=tiny_model).run()

    for name, tensor in live.state_dict().items():
        torch.testing.assert_close(cached.state_dict()[name], tensor, atol=0, rtol=0)
    assert live.get_buffer("feature_freq").max() > 0
    # The same results interface: same files, same log schema.
    live_files = sorted(p.name for p in (tmp_path / "live").iterdir())
    assert sorted(p.name for p in (tmp_path / "cached").iterdir()) == live_files
    assert [r["step"] for r in read_metrics(tmp_path / "cached")] == [
        r["step"] for r in read_metrics(tmp_path / "live")
    ]
    torch.testing.assert_close(
        load_feature_freq(tmp_path / "cached"), load_feature_freq(tmp_path / "live")
    )


def test_several_epochs_reuse_the_cache_in_order(
    cache_dir: Path,
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
) -> None:
    cfg = cached_training_config(
        build_cfg(text_dataset_dir, tmp_path / "run"), cache_dir, epochs=2.5
    )
    assert cfg.training_tokens == int(2.5 * N_CACHED)
    runner = FreqSAETrainingRunner(cfg, override_model=tiny_model)
    store = runner.activations_store
    first_epoch = [
        store.get_raw_llm_batch()[0] for _ in range(N_CACHED // (PROMPTS * CONTEXT))
    ]
    assert torch.equal(store.get_raw_llm_batch()[0], first_epoch[0])  # wrapped around
    store.current_row_idx = 0
    runner.run()
    records = read_metrics(tmp_path / "run")
    assert records[-1]["n_training_tokens"] == cfg.training_tokens
    runner_cfg = json.loads((tmp_path / "run" / "runner_cfg.json").read_text())
    assert runner_cfg["use_cached_activations"] is True


def test_bad_inputs_raise_value_errors(
    cache_dir: Path, text_dataset_dir: Path, tmp_path: Path
) -> None:
    cfg = build_cfg(text_dataset_dir, tmp_path)
    with pytest.raises(ValueError, match="epochs must be"):
        cached_training_config(cfg, cache_dir, epochs=0)
    with pytest.raises(ValueError, match="is not an activation cache"):
        cached_training_config(cfg, tmp_path, epochs=1)
    cfg.hook_name = "blocks.0.hook_resid_post"
    with pytest.raises(ValueError, match=r"hook_name='blocks\.0\.hook_resid_post'"):
        cached_training_config(cfg, cache_dir, epochs=1)
    with pytest.raises(ValueError, match="n_tokens must be"):
        cache_activations(cfg, tmp_path / "x", n_tokens=3)
