"""``sae-lens-freq train``: parsing in-process; a real SIGINT, resume and plain-SAELens load in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from sae_lens_freq.cli import train as train_cli
from sae_lens_freq.saes.freq_weighted_sae import FreqWeightedTrainingSAEConfig
from sae_lens_freq.training import PAPER_PRESET, read_metrics

VENV_BIN = Path(sys.executable).parent
TINY_FLAGS = [
    "--hook_name", "blocks.1.hook_resid_post",
    "--d_sae", "128",
    "--context_size", "32",
    "--store_batch_size_prompts", "4",
    "--n_batches_in_buffer", "8",
    "--train_batch_size_tokens", "64",
    "--streaming", "False",
    "--log_to_wandb", "False",
    "--wandb_log_frequency", "2",
    "--n_eval_batches", "1",
    "--verbose", "False",
]  # fmt: skip


def test_default_architecture_is_freq_weighted() -> None:
    command = train_cli.parse_train_args(["--d_in", "64", "--freq_coefficient", "0.3"])
    assert command is not None
    assert isinstance(command.cfg.sae, FreqWeightedTrainingSAEConfig)
    assert command.cfg.sae.freq_coefficient == 0.3


def test_paper_preset_fills_the_reference_run_and_flags_override_it() -> None:
    command = train_cli.parse_train_args(
        ["--preset", "paper", "--d_sae", "4096", "--lr", "1e-3"]
    )
    assert command is not None
    cfg = command.cfg
    assert (cfg.model_name, cfg.hook_name, cfg.dataset_path) == (
        "gemma-2-2b",
        "blocks.19.hook_resid_post",
        "monology/pile-uncopyrighted",
    )
    assert (cfg.context_size, cfg.train_batch_size_tokens, cfg.training_tokens) == (
        128,
        2048,
        20_000_000,
    )
    assert (
        cfg.sae.l1_coefficient,
        cfg.sae.freq_coefficient,
        cfg.sae.freq_ema_decay,
    ) == (0.04, 0.5, 0.99)
    assert cfg.sae.freq_warm_up_steps == 1000 and cfg.sae.d_in == 2304
    assert cfg.sae.d_sae == 4096 and cfg.lr == 1e-3  # overridden
    assert PAPER_PRESET["d_sae"] == 16384 and PAPER_PRESET["lr"] == 3e-4


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--preset", "paper", "--architecture", "standard"],
            "--architecture standard",
        ),
        (["--resume", "/nonexistent"], "not a checkpoint folder"),
        (["--model-path", "/nonexistent"], "not a local model folder"),
    ],
)
def test_bad_arguments_name_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_resume_rejects_other_config_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_cli.main(["--resume", str(tmp_path), "--lr", "1"]) == 2
    assert "only --model-path" in capsys.readouterr().err


def test_model_path_sets_d_in_and_loads_the_local_model(tiny_model_dir: Path) -> None:
    command = train_cli.parse_train_args(["--model-path", str(tiny_model_dir)])
    assert command is not None and command.cfg.sae.d_in == 64
    # the run records where its model lives, for eval / saebench / resume
    assert command.cfg.model_name == str(tiny_model_dir.resolve())
    command = train_cli.parse_train_args(
        ["--model-path", str(tiny_model_dir), "--d_in", "32"]
    )
    assert command is not None and command.cfg.sae.d_in == 32


def test_torchrun_goes_through_run_data_parallel(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch.distributed as dist

    import sae_lens_freq.models as models
    import sae_lens_freq.training.distributed as distributed

    events: list[str] = []
    calls: list[dict[str, Any]] = []
    load = models.load_hooked_transformer
    monkeypatch.setattr(distributed, "init_distributed", lambda: events.append("init"))
    monkeypatch.setattr(
        models,
        "load_hooked_transformer",
        lambda *a, **k: events.append("load") or load(*a, **k),
    )
    monkeypatch.setattr(
        distributed,
        "run_data_parallel",
        lambda cfg, override_model=None: calls.append(
            {"cfg": cfg, "model": override_model}
        ),
    )
    monkeypatch.setattr(dist, "destroy_process_group", lambda: events.append("exit"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (
        train_cli.main(["--model-path", str(tiny_model_dir), "--dataset_path", "x"])
        == 0
    )
    assert len(calls) == 1 and calls[0]["cfg"].dataset_path == "x"
    assert calls[0]["model"].cfg.d_model == 64
    # the rank joins the job (and pins its GPU) before the model is loaded
    assert events == ["init", "load", "exit"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
    }


def test_sigint_checkpoint_resume_and_plain_sae_lens_load(
    tiny_model_dir: Path, text_dataset_dir: Path, tmp_path: Path
) -> None:
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    argv = [
        str(VENV_BIN / "sae-lens-freq"), "train",
        "--model-path", str(tiny_model_dir),
        "--dataset_path", str(text_dataset_dir),
        "--training_tokens", str(64 * 1000),
        "--output_path", str(out),
        "--checkpoint_path", str(checkpoints),
        *TINY_FLAGS,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, env=_env(tmp_path), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr[-2000:]
    checkpoint = Path(stderr.split("--resume ")[-1].split()[0])
    assert checkpoint.parent.parent == checkpoints
    n_samples = int(checkpoint.name)
    assert 0 < n_samples < 64 * 1000
    assert (checkpoint / "freq_resume_state.pt").is_file()

    resumed = subprocess.run(
        [str(VENV_BIN / "sae-lens-freq"), "train", "--resume", str(checkpoint), "--model-path", str(tiny_model_dir)],
        env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = read_metrics(out)
    assert [r["step"] for r in records] == list(
        range(1, 1000, 2)
    )  # continuous, no repeats

    # The export loads in a process that never imports the plugin.
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    script = f"""
import sys, torch
from sae_lens import SAE
sae = SAE.load_from_disk({str(out)!r})
assert not any(m.startswith("sae_lens_freq") for m in sys.modules)
print(type(sae).__name__)
torch.save(sae.encode(torch.load({str(tmp_path / "x.pt")!r})).detach(), {str(tmp_path / "acts.pt")!r})
"""
    plain = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert plain.stdout.strip() == "StandardSAE"
    weights = load_file(out / "sae_weights.safetensors")
    expected = torch.relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])
    assert torch.allclose(torch.load(tmp_path / "acts.pt"), expected, atol=1e-5)
    assert json.loads((out / "cfg.json").read_text())["architecture"] == "standard"
