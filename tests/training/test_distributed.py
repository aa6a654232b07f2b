"""Data-parallel training: 2 gloo ranks on CPU against a single-process reference."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from sae_lens.training.sae_trainer import SAETrainer
from transformer_lens import HookedTransformer

from sae_lens_freq import load_feature_freq
from sae_lens_freq.training.distributed import (
    DistributedContext,
    rank_config,
    shard_dataset,
    store_state_filename,
)

WORKER = Path(__file__).with_name("ddp_worker.py")


def _load_worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", "2", str(WORKER), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    out = tmp_path_factory.mktemp("ddp_fixed")
    _torchrun("fixed", str(out))
    return out, [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """One process, the same global batches, rank 0's initial weights."""
    worker = _load_worker()
    trainer = SAETrainer(
        cfg=worker.trainer_config(None, n_checkpoints=0),
        sae=worker.build_sae(seed=0),
        data_provider=iter(worker.global_batches()),
    )
    trainer.fit()
    return worker.trainer_state(trainer)


@pytest.mark.slow
def test_two_ranks_equal_one_process_over_the_same_global_batches(
    fixed_run: tuple[Path, list[Any]], reference: dict[str, Any]
) -> None:
    _, ranks = fixed_run
    for state in (r["full"] for r in ranks):
        for name, ref in reference["weights"].items():
            torch.testing.assert_close(
                state["weights"][name], ref, atol=2e-5, rtol=1e-4
            )
        assert state["n_training_samples"] == reference["n_training_samples"]
        assert state["n_frac_active_samples"] == reference["n_frac_active_samples"]
        assert torch.equal(state["act_freq_scores"], reference["act_freq_scores"])
        assert torch.equal(
            state["n_forward_passes_since_fired"],
            reference["n_forward_passes_since_fired"],
        )
    # Training moved the weights, and some features went dead: the checks had teeth.
    init = _load_worker().build_sae(seed=0).state_dict()
    assert not torch.allclose(reference["weights"]["W_enc"], init["W_enc"])
    since_fired = reference["n_forward_passes_since_fired"]
    assert ((since_fired > 0) & (since_fired < _load_worker().N_STEPS)).any()


@pytest.mark.slow
def test_a_signal_on_one_rank_stops_all_ranks_with_a_checkpoint_that_resumes(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    worker = _load_worker()
    _torchrun("signal", str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for state in (rank0, rank1):
        # both ranks stopped at the step whose batch rank 1 was drawing
        assert state["resume_step"] == worker.SIGNAL_STEP
        assert state["exit_code"] == 128 + 15  # SIGTERM
        assert state["handlers_restored"]
        assert state["checkpoint"] == rank0["checkpoint"]
        for name, ref in reference["weights"].items():
            torch.testing.assert_close(
                state["resumed"]["weights"][name], ref, atol=2e-5, rtol=1e-4
            )
        assert torch.equal(
            state["resumed"]["act_freq_scores"], reference["act_freq_scores"]
        )
    checkpoint = Path(rank0["checkpoint"])
    assert (checkpoint / "sae_weights.safetensors").is_file()
    assert (checkpoint / "trainer_state.pt").is_file()


@pytest.mark.slow
def test_feature_freq_and_weights_identical_on_both_ranks(
    fixed_run: tuple[Path, list[Any]],
) -> None:
    _, (rank0, rank1) = fixed_run
    freq = rank0["full"]["weights"]["feature_freq"]
    assert freq.max() > 0
    for name, tensor in rank0["full"]["weights"].items():
        assert torch.equal(tensor, rank1["full"]["weights"][name]), name


@pytest.mark.slow
def test_resumed_two_rank_run_continues_exactly(
    fixed_run: tuple[Path, list[Any]],
) -> None:
    _, ranks = fixed_run
    for state in ranks:
        assert 0 < state["resume_step"] < _load_worker().N_STEPS
        full, resumed = state["full"], state["resumed"]
        assert resumed["n_training_samples"] == full["n_training_samples"]
        assert resumed["n_training_steps"] == full["n_training_steps"]
        for name, tensor in full["weights"].items():
            torch.testing.assert_close(
                resumed["weights"][name], tensor, atol=1e-6, rtol=0
            )
        assert torch.equal(resumed["act_freq_scores"], full["act_freq_scores"])


@pytest.mark.slow
def test_only_rank0_writes_metrics_averaged_over_ranks(
    fixed_run: tuple[Path, list[Any]],
) -> None:
    out, _ = fixed_run
    records = [
        json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    worker = _load_worker()
    assert [r["step"] for r in records] == [4, 9, 14, 19]
    assert records[-1]["n_training_tokens"] == 20 * worker.GLOBAL_BATCH
    assert all(r["losses/overall_loss"] > 0 for r in records)
    (ckpt,) = (out / "ckpt").iterdir()
    # Rank 1 had no data store here, so rank 0 wrote the checkpoint alone.
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        [
            "activation_scaler.json",
            "cfg.json",
            "metrics.jsonl",
            "sae_weights.safetensors",
            "sparsity.safetensors",
            "trainer_state.pt",
        ]
    )


@pytest.mark.slow
def test_torchrun_end_to_end_on_tiny_model_with_resume(
    tmp_path: Path, tiny_model_dir: Path, text_dataset_dir: Path
) -> None:
    _torchrun("tiny", str(tmp_path), str(tiny_model_dir), str(text_dataset_dir))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for key in ("first", "resumed"):
        for name, tensor in rank0[key].items():
            assert torch.equal(tensor, rank1[key][name]), (key, name)
    checkpoint = Path(rank0["checkpoint"])
    assert (checkpoint / store_state_filename(0)).is_file()
    assert (checkpoint / store_state_filename(1)).is_file()
    for run, key in (("run", "first"), ("resumed", "resumed")):
        folder = tmp_path / run
        assert (folder / "cfg.json").is_file()
        runner_cfg = json.loads((folder / "runner_cfg.json").read_text())
        assert runner_cfg["train_batch_size_tokens"] == 64  # the global batch
        freq = load_feature_freq(folder)
        torch.testing.assert_close(freq, rank0[key]["feature_freq"])
        steps = [
            json.loads(x)["step"]
            for x in (folder / "metrics.jsonl").read_text().splitlines()
        ]
        assert steps == sorted(set(steps)) and steps[-1] == 19
    # The resumed log continues the first one: same records up to the checkpoint.
    first, resumed = (
        [
            json.loads(x)
            for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        ]
        for run in ("run", "resumed")
    )
    assert [r["step"] for r in resumed] == [r["step"] for r in first]
    done = int(checkpoint.name) // 64
    assert [r for r in resumed if r["step"] < done] == [
        r for r in first if r["step"] < done
    ]


def test_rank_config_splits_the_global_batch_and_validates(
    tiny_model: HookedTransformer,
) -> None:
    del tiny_model
    from sae_lens import LanguageModelSAERunnerConfig

    from sae_lens_freq import FreqWeightedTrainingSAEConfig

    cfg = LanguageModelSAERunnerConfig(
        sae=FreqWeightedTrainingSAEConfig(d_in=8, d_sae=16),
        train_batch_size_tokens=96,
        training_tokens=960,
        checkpoint_path=None,
        verbose=False,
    )
    local = rank_config(cfg, DistributedContext(rank=1, world_size=4))
    assert (local.train_batch_size_tokens, local.training_tokens) == (24, 240)
    assert cfg.train_batch_size_tokens == 96  # the caller's config is untouched
    with pytest.raises(ValueError, match="train_batch_size_tokens=96"):
        rank_config(cfg, DistributedContext(rank=0, world_size=5))


def test_shard_dataset_gives_disjoint_covering_parts(text_dataset_dir: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset(str(text_dataset_dir), split="train", streaming=True)
    parts: list[list[str]] = [
        [row["text"] for row in shard_dataset(ds, DistributedContext(r, 2))]
        for r in range(2)
    ]
    everything: list[str] = [dict(row)["text"] for row in ds]
    assert len(parts[0]) + len(parts[1]) == len(everything)
    assert parts[0] == everything[0::2] and parts[1] == everything[1::2]
    with pytest.raises(ValueError, match="dataset must be"):
        shard_dataset([1, 2], DistributedContext(0, 2))
