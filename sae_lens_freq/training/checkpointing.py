"""What a FreqSAE checkpoint adds to SAELens's, so that a resume is exact.

SAELens's checkpoint folder already holds the SAE weights (``feature_freq``
included: a persistent buffer), ``trainer_state.pt`` (optimiser, LR and coefficient
schedulers, step counts, dead-feature statistics), the activation scaler, the
store's ``n_dataset_processed`` and ``runner_cfg.json``. The plugin adds
``freq_resume_state.pt`` (loadable with ``torch.load(weights_only=True)``):

- ``n_training_steps``: completed steps. SAELens saves its counter before
  incrementing it, one behind at periodic checkpoints; this value is exact.
- ``rng``: the torch (CPU and every CUDA device), numpy and ``random`` states.
- ``sequences_in_epoch`` / ``n_dataset_processed``: the token-stream position
  (see :mod:`sae_lens_freq.training.activation_stream`).
- ``stream``: the mixing buffer's ``pending`` batches and ``leftover``
  activations, or None when the run was not exact (prefetching or cached
  activations).

and ``metrics.jsonl``, the plain-file log up to this checkpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESUME_STATE_FILENAME = "freq_resume_state.pt"
FORMAT_VERSION = 1


@dataclass
class ResumeState:
    """The plugin's part of a checkpoint (see module docstring)."""

    n_training_steps: int
    n_dataset_processed: int
    sequences_in_epoch: int | None
    stream: dict[str, torch.Tensor] | None
    rng: dict[str, Any]

    def save(self, folder: Path) -> Path:
        path = folder / RESUME_STATE_FILENAME
        torch.save(
            {
                "format_version": FORMAT_VERSION,
                "n_training_steps": self.n_training_steps,
                "n_dataset_processed": self.n_dataset_processed,
                "sequences_in_epoch": self.sequences_in_epoch,
                "stream": self.stream,
                "rng": self.rng,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ResumeState | None:
        """The state saved in checkpoint ``folder``; None for a plain SAELens checkpoint."""
        path = Path(folder) / RESUME_STATE_FILENAME
        if not path.is_file():
            return None
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format_version={raw.get('format_version')!r}, "
                f"this version reads {FORMAT_VERSION}"
            )
        return cls(
            n_training_steps=raw["n_training_steps"],
            n_dataset_processed=raw["n_dataset_processed"],
            sequences_in_epoch=raw["sequences_in_epoch"],
            stream=raw["stream"],
            rng=raw["rng"],
        )


def capture_rng() -> dict[str, Any]:
    """Every global RNG state training can touch, in ``weights_only``-loadable types."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [
            name,
            torch.from_numpy(np.asarray(keys).astype(np.int64)),
            pos,
            has_gauss,
            cached,
        ],
        "cuda": [],
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and ``random`` (SAELens 6.54 never uses its ``seed`` field)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
