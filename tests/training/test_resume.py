"""Checkpoints that resume exactly, and signals that leave one.

Tolerance: none. On CPU a resumed run reproduces the uninterrupted run bit for bit
(weights, feature_freq, every metrics.jsonl number), so the tests use
``torch.equal`` and ``==``.
"""

from __future__ import annotations

import copy
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformer_lens import HookedTransformer

from sae_lens_freq.training import (
    RESUME_STATE_FILENAME,
    FreqSAETrainingRunner,
    TrainingInterrupted,
    read_metrics,
)
from sae_lens_freq.training.activation_stream import ResumableActivationStream
from sae_lens_freq.training.interrupts import InterruptGuard
from sae_lens_freq.training.presets import tiny_offline_config

N_STEPS = 60
BATCH = 64
CHECKPOINT_FILES = {
    "cfg.json",
    "sae_weights.safetensors",
    "sparsity.safetensors",
    "trainer_state.pt",
    "activation_scaler.json",
    "activations_store_state.safetensors",
    "runner_cfg.json",
    RESUME_STATE_FILENAME,
    "metrics.jsonl",
}


def resume_cfg(text_dir: Path, out: Path, **overrides: Any) -> Any:
    # Warm-ups longer than the resume point, evals that read the token stream, and
    # a buffer refilled every few steps: everything a resume could get wrong.
    return tiny_offline_config(
        str(text_dir),
        output_path=str(out / "output"),
        checkpoint_path=str(out / "checkpoints"),
        training_tokens=BATCH * N_STEPS,
        n_checkpoints=3,
        l1_warm_up_steps=40,
        freq_warm_up_steps=50,
        wandb_log_frequency=2,
        eval_every_n_wandb_logs=4,
        **overrides,
    )


def snapshot(runner: FreqSAETrainingRunner, n_training_steps: int) -> dict[str, Any]:
    trainer = runner.trainer
    assert trainer is not None and runner.stream is not None
    assert runner.token_position is not None
    return copy.deepcopy(
        {
            "sae": trainer.sae.state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "lr_scheduler": trainer.lr_scheduler.state_dict(),
            "coefficients": {
                name: (s.state_dict(), s.value)
                for name, s in trainer.coefficient_schedulers.items()
            },
            "n_training_steps": n_training_steps,
            "n_training_samples": trainer.n_training_samples,
            "act_freq_scores": trainer.act_freq_scores,
            "n_forward_passes_since_fired": trainer.n_forward_passes_since_fired,
            "n_frac_active_samples": trainer.n_frac_active_samples,
            "torch_rng": torch.get_rng_state(),
            "stream": runner.stream.state(),
            "sequences_in_epoch": runner.token_position.sequences_in_epoch,
            "n_dataset_processed": runner.activations_store.n_dataset_processed,
        }
    )


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


class SnapshotRunner(FreqSAETrainingRunner):
    """Records the state at every checkpoint and right after a resume."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.saved: dict[str, dict[str, Any]] = {}
        self.resumed: dict[str, Any] | None = None

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        super().save_checkpoint(checkpoint_path)
        if checkpoint_path is not None:
            self.saved[checkpoint_path.name] = snapshot(self, self.completed_steps)

    def restore_training_state(self, trainer: Any) -> None:
        super().restore_training_state(trainer)
        if self.cfg.resume_from_checkpoint:
            self.resumed = snapshot(self, trainer.n_training_steps)


@dataclass
class Reference:
    checkpoints: list[Path]
    saved: dict[str, dict[str, Any]]
    output: Path


@pytest.fixture(scope="module")
def reference(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Reference:
    """One uninterrupted run, with three periodic checkpoints."""
    cfg = resume_cfg(text_dataset_dir, tmp_path_factory.mktemp("reference"))
    runner = SnapshotRunner(cfg, override_model=tiny_model)
    runner.run()
    folder = Path(cfg.checkpoint_path)
    checkpoints = sorted(folder.iterdir(), key=lambda p: int(p.name))
    return Reference(checkpoints, runner.saved, Path(cfg.output_path))


def assert_same_final(output: Path, reference: Reference) -> None:
    for name in (
        "sae_weights.safetensors",
        "feature_freq.safetensors",
        "sparsity.safetensors",
    ):
        assert_same(load_file(output / name), load_file(reference.output / name), name)
    assert read_metrics(output) == read_metrics(reference.output)


def test_resume_restores_saved_state_and_ends_identically(
    reference: Reference,
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
) -> None:
    checkpoint = reference.checkpoints[1]
    assert set(os.listdir(checkpoint)) == CHECKPOINT_FILES
    saved = reference.saved[checkpoint.name]
    assert 0 < saved["coefficients"]["freq"][1] < 0.5  # mid warm-up
    assert saved["stream"]["leftover"].shape[0] > 0  # a non-empty buffer to restore

    cfg = resume_cfg(text_dataset_dir, tmp_path, resume_from_checkpoint=str(checkpoint))
    runner = SnapshotRunner(cfg, override_model=tiny_model)
    runner.run()

    assert_same(runner.resumed, saved)
    assert_same_final(Path(cfg.output_path), reference)
    # Thresholds already passed are not checkpointed again.
    written = sorted(int(p.name) for p in Path(cfg.checkpoint_path).iterdir())
    assert written == [int(reference.checkpoints[2].name)]


class SignalAtStep(FreqSAETrainingRunner):
    """Raises a real signal in-process from a step hook, after ``stop_after`` steps."""

    def __init__(self, *args: Any, signum: int, stop_after: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.signum, self.stop_after = signum, stop_after

    def restore_training_state(self, trainer: Any) -> None:
        super().restore_training_state(trainer)
        original = trainer.step

        def step(batch: torch.Tensor) -> Any:
            output = original(batch)
            if trainer.n_training_samples == self.stop_after * BATCH:
                signal.raise_signal(self.signum)
            return output

        trainer.step = step


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_a_checkpoint_that_resumes_exactly(
    reference: Reference,
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
    signum: int,
) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cfg = resume_cfg(text_dataset_dir, tmp_path / "first")
    runner = SignalAtStep(cfg, override_model=tiny_model, signum=signum, stop_after=25)
    with pytest.raises(TrainingInterrupted) as info:
        runner.run()
    assert {s: signal.getsignal(s) for s in before} == before
    assert info.value.signum == signum and info.value.exit_code == 128 + signum
    checkpoint = Path(cfg.checkpoint_path) / str(25 * BATCH)
    assert info.value.checkpoint_path == str(checkpoint)
    assert set(os.listdir(checkpoint)) == CHECKPOINT_FILES
    assert read_metrics(checkpoint)[-1]["step"] == 23  # the last logged step before 25

    resumed = resume_cfg(
        text_dataset_dir, tmp_path / "second", resume_from_checkpoint=str(checkpoint)
    )
    FreqSAETrainingRunner(resumed, override_model=tiny_model).run()
    assert_same_final(Path(resumed.output_path), reference)


def test_stream_serves_what_sae_lens_data_loader_serves(
    tiny_model: HookedTransformer, text_dataset_dir: Path
) -> None:
    cfg = tiny_offline_config(str(text_dataset_dir), activations_mixing_fraction=0.5)
    ours = FreqSAETrainingRunner(cfg, override_model=tiny_model)
    stream = ResumableActivationStream(ours.activations_store)
    from sae_lens.training.activations_store import ActivationsStore

    theirs = ActivationsStore.from_config(tiny_model, cfg).get_data_loader()
    torch.manual_seed(7)
    mine = [next(stream) for _ in range(40)]
    torch.manual_seed(7)
    sae_lens = [next(theirs) for _ in range(40)]
    assert all(torch.equal(a, b) for a, b in zip(mine, sae_lens, strict=True))


def test_interrupt_guard_defers_the_first_signal_and_restores_handlers() -> None:
    def previous(_signum: int, _frame: Any) -> None:
        raise AssertionError("the guard's handler should be active")

    old = signal.signal(signal.SIGTERM, previous)
    try:
        with InterruptGuard() as guard:
            signal.raise_signal(signal.SIGTERM)  # only requested
            assert guard.requested_signum == signal.SIGTERM
            with pytest.raises(TrainingInterrupted) as first:
                guard.check()
            assert first.value.at_step_boundary
            with pytest.raises(TrainingInterrupted) as second:
                signal.raise_signal(signal.SIGINT)  # a second signal: at once
            assert not second.value.at_step_boundary
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)
