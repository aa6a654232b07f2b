"""Training a FreqSAE through SAELens: routes 1 and 2, metrics.jsonl, pre-tokenised data, W&B."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import wandb
from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner
from sae_lens.config import PretokenizeRunnerConfig
from sae_lens.pretokenize_runner import PretokenizeRunner
from safetensors.torch import load_file
from transformer_lens import HookedTransformer

from sae_lens_freq import FreqWeightedTrainingSAEConfig, load_feature_freq
from sae_lens_freq.training import FreqSAETrainingRunner, read_metrics
from sae_lens_freq.training.presets import tiny_offline_config
from sae_lens_freq.training.pretokenized import (
    ensure_datasets_torch_format,
    validate_local_tokenizer,
)

FREQ_KEYS = (
    "metrics/freq/beta",
    "metrics/freq/feature_freq_mean",
    "metrics/freq/feature_freq_max",
    "metrics/freq/penalty_weight_mean",
    "metrics/freq/frac_above_1e-02",
)


def test_route1_sae_lens_own_runner_trains_and_exports_standard(
    tiny_model: HookedTransformer, text_dataset_dir: Path, tmp_path: Path
) -> None:
    cfg = tiny_offline_config(str(text_dataset_dir), output_path=str(tmp_path / "out"))
    assert isinstance(cfg.sae, FreqWeightedTrainingSAEConfig)
    sae = LanguageModelSAETrainingRunner(cfg, override_model=tiny_model).run()

    exported = json.loads((tmp_path / "out" / "cfg.json").read_text())
    assert exported["architecture"] == "standard"
    freq = load_feature_freq(tmp_path / "out")
    assert torch.equal(freq, sae.get_buffer("feature_freq").cpu())
    assert 0 < float(freq.mean()) < 1


def test_route1_plugin_runner_writes_consistent_metrics_log(
    tiny_model: HookedTransformer, text_dataset_dir: Path, tmp_path: Path
) -> None:
    cfg = tiny_offline_config(
        str(text_dataset_dir),
        output_path=str(tmp_path / "out"),
        wandb_log_frequency=4,
        eval_every_n_wandb_logs=5,
    )
    sae = FreqSAETrainingRunner(cfg, override_model=tiny_model).run()

    records = read_metrics(tmp_path / "out")
    n_steps = cfg.training_tokens // cfg.train_batch_size_tokens
    assert [r["step"] for r in records] == list(range(3, n_steps, 4))
    for record in records:
        assert record["n_training_tokens"] == (record["step"] + 1) * 64
        assert record["losses/overall_loss"] == pytest.approx(
            record["losses/mse_loss"] + record["losses/l1_loss"], rel=1e-5
        )
        assert all(key in record for key in FREQ_KEYS)
        assert 0 <= record["metrics/l0"] <= cfg.sae.d_sae
        # beta warms up linearly over freq_warm_up_steps=4 steps
        expected_beta = 0.5 * min(1.0, record["step"] / 4)
        assert record["metrics/freq/beta"] == pytest.approx(expected_beta)
    evals = [
        r["step"]
        for r in records
        if "model_performance_preservation/ce_loss_score" in r
    ]
    assert evals == [19, 39]
    kl_rows = [r for r in records if "model_behavior_preservation/kl_div_score" in r]
    assert [r["step"] for r in kl_rows] == evals
    assert all(r["model_behavior_preservation/kl_div_score"] <= 1.0 for r in kl_rows)
    # The last step is a logging step: its mean feature_freq is the exported one.
    final_freq = sae.get_buffer("feature_freq")
    assert records[-1]["step"] == n_steps - 1
    assert records[-1]["metrics/freq/feature_freq_mean"] == pytest.approx(
        float(final_freq.mean()), rel=1e-6
    )


def test_route2_from_dict_builds_and_trains_a_freq_sae(
    tiny_model: HookedTransformer, text_dataset_dir: Path, tmp_path: Path
) -> None:
    as_dict = tiny_offline_config(
        str(text_dataset_dir), output_path=str(tmp_path / "out"), freq_coefficient=0.25
    ).to_dict()
    as_dict["sae"] = {
        "architecture": "freq_weighted",
        "d_in": 64,
        "d_sae": 96,
        "freq_coefficient": 0.25,
        "freq_warm_up_steps": 0,
    }
    cfg = LanguageModelSAERunnerConfig.from_dict(as_dict)
    assert isinstance(cfg.sae, FreqWeightedTrainingSAEConfig)
    assert cfg.sae.freq_coefficient == 0.25

    sae = FreqSAETrainingRunner(cfg, override_model=tiny_model).run()
    assert sae.cfg.d_sae == 96
    records = read_metrics(tmp_path / "out")
    assert {r["metrics/freq/beta"] for r in records} == {0.25}


def _pretokenize(tokenizer_dir: Path, text_dir: Path, out: Path) -> Path:
    PretokenizeRunner(
        PretokenizeRunnerConfig(
            tokenizer_name=str(tokenizer_dir),
            dataset_path=str(text_dir),
            context_size=32,
            num_proc=1,
            shuffle=False,
            save_path=str(out),
        )
    ).run()
    return out


@pytest.mark.parametrize("streaming", [False, True])
def test_local_pretokenized_dataset_trains(
    tiny_model: HookedTransformer,
    tokenizer_dir: Path,
    text_dataset_dir: Path,
    tmp_path: Path,
    streaming: bool,
) -> None:
    data = _pretokenize(tokenizer_dir, text_dataset_dir, tmp_path / "pretok")
    cfg = tiny_offline_config(
        str(data), output_path=str(tmp_path / "out"), streaming=streaming
    )
    runner = FreqSAETrainingRunner(cfg, override_model=tiny_model)
    assert runner.activations_store.is_dataset_tokenized
    first = runner.activations_store.get_batch_tokens(1)[0]
    from datasets import load_from_disk

    assert first.tolist() == list(load_from_disk(str(data))[0]["input_ids"])
    runner.run()
    assert (tmp_path / "out" / "sae_weights.safetensors").is_file()


def test_torchvision_shim_makes_datasets_torch_format_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torchvision.io
    from datasets import Dataset

    # As installed (torchvision 0.29): no VideoReader, and torch formatting fails.
    monkeypatch.delattr(torchvision.io, "VideoReader", raising=False)
    dataset = Dataset.from_dict({"input_ids": [[1, 2, 3], [4, 5, 6]]})
    dataset.set_format(type="torch", columns=["input_ids"])
    with pytest.raises(ImportError, match="VideoReader"):
        dataset[0]

    assert ensure_datasets_torch_format()
    assert torch.equal(dataset[1]["input_ids"], torch.tensor([4, 5, 6]))
    assert not ensure_datasets_torch_format()  # idempotent


def test_local_tokenizer_check_rejects_another_vocabulary(
    tokenizer_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    (tmp_path / "sae_lens.json").write_text(
        json.dumps({"tokenizer_name": str(tokenizer_dir)})
    )
    same = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    validate_local_tokenizer(tmp_path, same)

    class OtherTokenizer:
        def get_vocab(self) -> dict[str, int]:
            return {"a": 0}

    with pytest.raises(ValueError, match="dataset_path"):
        validate_local_tokenizer(tmp_path, OtherTokenizer())


def _wandb_history(run_file: Path, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """History rows of an offline ``.wandb`` file, once its ``exit`` record is written.

    ``wandb.finish()`` can return before wandb's service process has flushed the
    file, so poll for the record that closes the run.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        rows, closed = _read_wandb_file(run_file)
        if closed or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _read_wandb_file(run_file: Path) -> tuple[list[dict[str, Any]], bool]:
    """Parse the LevelDB-style log of protobuf records W&B writes offline."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    data, block = run_file.read_bytes(), 32768
    rows, pos, chunks, closed = [], 7, b"", False
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):
            pos += left
            continue
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST fragment
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            try:
                record.ParseFromString(chunks)
            except DecodeError:  # a record still being written
                return rows, False
            chunks = b""
            closed = closed or record.WhichOneof("record_type") == "exit"
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {
                        "/".join(item.nested_key) or item.key: json.loads(
                            item.value_json
                        )
                        for item in record.history.item
                    }
                )
    return rows, closed


def test_wandb_offline_run_holds_freq_metrics_and_histogram(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = tiny_offline_config(
        str(text_dataset_dir),
        output_path=str(tmp_path / "out"),
        log_to_wandb=True,
        wandb_project="freq-test",
        wandb_log_frequency=4,
        eval_every_n_wandb_logs=5,
        training_tokens=64 * 20,
    )
    run_files: list[Path] = []

    class RecordingRunner(FreqSAETrainingRunner):
        def restore_training_state(self, trainer: Any) -> None:
            super().restore_training_state(trainer)
            assert wandb.run is not None
            run_files.append(Path(wandb.run.settings.sync_file))

    RecordingRunner(cfg, override_model=tiny_model).run()

    history = _wandb_history(run_files[0])
    logged = {key for row in history for key in row}
    assert set(FREQ_KEYS) <= logged
    histogram_rows = [row for row in history if "freq/log10_feature_freq/values" in row]
    assert (
        histogram_rows
        and histogram_rows[0]["freq/log10_feature_freq/_type"] == "histogram"
    )
    # W&B and metrics.jsonl hold the same numbers.
    records = {r["step"]: r for r in read_metrics(tmp_path / "out")}
    for row in history:
        if "metrics/freq/feature_freq_mean" in row:
            step = row["_step"]
            assert row["metrics/freq/feature_freq_mean"] == pytest.approx(
                records[step]["metrics/freq/feature_freq_mean"]
            )
    assert load_file(tmp_path / "out" / "sae_weights.safetensors")
