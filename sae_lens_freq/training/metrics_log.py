"""``metrics.jsonl``: the training curves as a plain file, with or without W&B.

Schema (stable; ``sae-lens-freq report`` reads it). One JSON object per line, one
line per logging step, i.e. every ``logger.wandb_log_frequency`` training steps:

- ``step`` (int): the 0-based index of the training step, the same ``step`` SAELens
  gives W&B. A record exists when ``(step + 1) % wandb_log_frequency == 0``.
- ``n_training_tokens`` (int): tokens (activation rows) trained on so far,
  including this step.
- every key of SAELens's ``SAETrainer.build_train_step_log_dict``:
  ``losses/overall_loss``, ``losses/mse_loss``, ``losses/l1_loss``, ``metrics/l0``,
  ``metrics/explained_variance`` (and ``_legacy``/``_legacy_std``),
  ``sparsity/mean_passes_since_fired``, ``sparsity/dead_features``,
  ``details/current_learning_rate``, ``details/n_training_samples``,
  ``details/l1_coefficient``, ``details/freq_coefficient``, and the FreqSAE's
  ``metrics/freq/beta``, ``metrics/freq/feature_freq_mean``,
  ``metrics/freq/feature_freq_max``, ``metrics/freq/penalty_weight_mean``,
  ``metrics/freq/penalty_weight_max``, ``metrics/freq/frac_above_1e-01`` (also
  ``1e-02``, ``1e-03``);
- on every ``eval_every_n_wandb_logs``-th record, the numbers of SAELens's
  evaluator (``run_evals``) merged in, its nested groups joined with ``/``:
  ``model_performance_preservation/ce_loss_score`` (also ``ce_loss_with_sae``,
  ``ce_loss_without_sae``, ``ce_loss_with_ablation``),
  ``reconstruction_quality/explained_variance`` (also ``mse``, ``cossim``,
  ``explained_variance_legacy``), ``shrinkage/l2_ratio`` (also ``l2_norm_in``,
  ``l2_norm_out``, ``relative_reconstruction_bias``), ``sparsity/l0``,
  ``sparsity/l1``, ``token_stats/total_tokens_eval_reconstruction``, ... (W&B
  shows the same numbers as ``model_performance_preservation.ce_loss_score`` etc.).

Values are JSON numbers; a non-finite value is written as ``null``. The file is
copied into every checkpoint folder; resuming from a checkpoint restores it, so the
lines logged after that checkpoint by an interrupted run are replaced, not doubled.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from sae_lens_freq.metric_dicts import flatten

METRICS_FILENAME = "metrics.jsonl"


class MetricsLog:
    """Appends records to ``path``; the latest record stays open for eval metrics.

    SAELens runs its evaluator after the train-step log of the same step, so a
    record is written when the next one starts, at a checkpoint, or at ``flush()``.
    ``path`` None keeps nothing on disk (the runner has no ``output_path``).
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._pending: dict[str, Any] | None = None

    def start_record(
        self, step: int, n_training_tokens: int, values: dict[str, Any]
    ) -> None:
        """Open the record of ``step`` (writing the previous one)."""
        self.flush()
        self._pending = {"step": step, "n_training_tokens": n_training_tokens}
        self.update(values)

    def update(self, values: dict[str, Any]) -> None:
        """Merge numeric ``values`` into the open record.

        Nested dicts are flattened with ``/``; non-numbers (histograms) are skipped.
        """
        if self._pending is None:
            return
        for key, value in flatten(values).items():
            number = _as_number(value)
            if number is not _NOT_A_NUMBER:
                self._pending[key] = number

    def flush(self) -> None:
        """Write the open record, if any."""
        if self._pending is None:
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(self._pending, allow_nan=False) + "\n")
        self._pending = None

    def copy_to(self, folder: Path) -> None:
        """Mirror the file (after a flush) into a checkpoint folder."""
        self.flush()
        if self.path is not None and self.path.exists():
            shutil.copyfile(self.path, folder / METRICS_FILENAME)

    def reset(self) -> None:
        """Start a fresh file (a new run writing into an existing output folder)."""
        self._pending = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def restore_from(self, folder: Path) -> None:
        """Replace the file with the copy saved in a checkpoint folder (resume)."""
        self._pending = None
        if self.path is None:
            return
        saved = folder / METRICS_FILENAME
        if saved.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, self.path)
        else:
            self.path.unlink(missing_ok=True)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (or of the one in folder ``path``)."""
    file = Path(path)
    if file.is_dir():
        file = file / METRICS_FILENAME
    if not file.is_file():
        raise ValueError(
            f"path={str(path)!r} is not a metrics.jsonl file or a folder holding one"
        )
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


_NOT_A_NUMBER = object()


def _as_number(value: Any) -> Any:
    if callable(value):
        value = value()
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return _NOT_A_NUMBER
