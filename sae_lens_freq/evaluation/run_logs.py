"""Read back what a training run logged: ``metrics.jsonl`` and W&B offline runs.

Both sources become the same thing, a list of flat rows (``dict[str, float]``), one
per logged step, with ``step`` and ``n_training_tokens`` where known and SAELens's
trainer keys (``losses/overall_loss``, ``metrics/l0``, ...). Nested values (W&B
logs the evaluator's metric groups as nested dicts) are flattened with ``/``.

``metrics.jsonl`` (written by the plugin's runner into ``output_path``) is read
first; with W&B in offline mode the history is read straight from
``wandb/offline-run-*/run-*.wandb``. wandb 0.31 ships no Python reader for that
file, so :func:`read_wandb_offline_run` parses its record framing (the LevelDB log
format wandb-core writes: 32 KiB blocks, 7-byte chunk headers) and decodes each
record with wandb's own protobuf classes.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sae_lens_freq.metric_dicts import flatten

METRICS_LOG_FILENAME = "metrics.jsonl"
"""File the plugin's runner writes into a run's ``output_path``."""

SERIES_KEYS: dict[str, tuple[str, ...]] = {
    "loss": ("losses/overall_loss",),
    "mse_loss": ("losses/mse_loss",),
    "l0": ("metrics/l0",),
    "explained_variance": ("metrics/explained_variance",),
    "kl_div_score": ("metrics/kl_div_score", "kl_div_score"),
    "ce_loss_score": ("metrics/ce_loss_score", "ce_loss_score"),
}
"""Curve name -> logged keys, tried in order; a bare name also matches ``*/name``."""

_TOKEN_KEYS = ("n_training_tokens", "details/n_training_samples")
_WANDB_MAGIC = b":W&B"
_BLOCK = 32768
_CHUNK_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_metrics_jsonl(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``metrics.jsonl``; a truncated last line (a run still writing) is skipped."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"metrics_log={str(path)!r} is not a file")
    lines = file.read_text().splitlines()
    rows: list[dict[str, float]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise ValueError(f"{file}:{number} is not a JSON object: {err}") from err
        rows.append(_numeric(flatten(raw)))
    return rows


def iter_wandb_records(path: str | Path) -> Iterable[Any]:
    """Decode every record of a ``run-*.wandb`` file into wandb's protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != _WANDB_MAGIC:
        raise ValueError(f"wandb_file={str(path)!r} is not a W&B run file")
    pos, pending = _CHUNK_HEADER, b""
    while pos + _CHUNK_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _CHUNK_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _CHUNK_HEADER])
        chunk = data[pos + _CHUNK_HEADER : pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind in (_FULL, _FIRST):
            pending = chunk
        elif kind in (_MIDDLE, _LAST):
            pending += chunk
        else:  # zero padding at the end of a flushed block
            continue
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            record.ParseFromString(pending)
            yield record


def read_wandb_offline_run(path: str | Path) -> list[dict[str, float]]:
    """History rows of a W&B offline run (its folder or its ``run-*.wandb`` file)."""
    file = _wandb_file(path)
    by_step: dict[int, dict[str, Any]] = {}
    for record in iter_wandb_records(file):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in record.history.item:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            row[key] = json.loads(item.value_json)
        step = int(record.history.step.num)
        by_step.setdefault(step, {}).update(row)
    rows = []
    for step in sorted(by_step):
        row = _numeric(by_step[step])
        row["step"] = float(step)
        if "n_training_tokens" not in row and "details/n_training_samples" in row:
            row["n_training_tokens"] = row["details/n_training_samples"]
        rows.append(row)
    return rows


def read_wandb_config(path: str | Path) -> dict[str, Any]:
    """The run config (``wandb.init(config=...)``) stored in a W&B offline run."""
    config: dict[str, Any] = {}
    for record in iter_wandb_records(_wandb_file(path)):
        kind = record.WhichOneof("record_type")
        items = (
            record.run.config.update
            if kind == "run"
            else record.config.update
            if kind == "config"
            else []
        )
        for item in items:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            value = json.loads(item.value_json)
            # wandb wraps top-level entries as {"value": ..., "desc": ...}; nested
            # dict entries (e.g. the runner's "sae") come unwrapped.
            wrapped = isinstance(value, dict) and "value" in value
            config[key] = value["value"] if wrapped else value
    return config


def find_wandb_offline_runs(folder: str | Path) -> list[Path]:
    """``run-*.wandb`` files under ``folder`` (``wandb/offline-run-*`` or directly)."""
    root = Path(folder)
    patterns = ("offline-run-*/run-*.wandb", "wandb/offline-run-*/run-*.wandb")
    return sorted({p for pattern in patterns for p in root.glob(pattern)})


def load_training_log(
    run_dir: str | Path, wandb_dirs: Sequence[str | Path] = ()
) -> tuple[list[dict[str, float]], str] | None:
    """The training log of a run and where it came from, or ``None`` if none is found.

    Looks for ``metrics.jsonl`` in the run folder, then in the runner config's
    ``output_path`` (a checkpoint points there), then for W&B offline runs under the
    run folder and ``wandb_dirs`` whose config's ``output_path`` is this run.
    """
    run = Path(run_dir)
    candidates = [run]
    output_path = _runner_output_path(run)
    if output_path is not None:
        candidates.append(output_path)
    for folder in candidates:
        log = folder / METRICS_LOG_FILENAME
        if log.is_file():
            return read_metrics_jsonl(log), str(log)
    targets = {p.resolve() for p in candidates}
    files = find_wandb_offline_runs(run)
    for folder in wandb_dirs:
        files += find_wandb_offline_runs(folder)
    for file in files:
        logged = read_wandb_config(file).get("output_path")
        if file.is_relative_to(run) or (
            logged is not None and Path(logged).resolve() in targets
        ):
            return read_wandb_offline_run(file), str(file)
    return None


def series(
    rows: Sequence[dict[str, float]], name: str
) -> tuple[list[float], list[float]]:
    """``(tokens, values)`` of the curve ``name`` (see ``SERIES_KEYS``); x falls back to step."""
    if name not in SERIES_KEYS:
        raise ValueError(
            f"series name={name!r} is unknown; allowed: {sorted(SERIES_KEYS)}"
        )
    xs: list[float] = []
    ys: list[float] = []
    for row in rows:
        value = _lookup(row, SERIES_KEYS[name])
        x = _lookup(row, _TOKEN_KEYS)
        if x is None:
            x = row.get("step")
        if value is not None and x is not None:
            xs.append(x)
            ys.append(value)
    return xs, ys


def final_value(rows: Sequence[dict[str, float]], name: str) -> float | None:
    """The last logged value of the curve ``name``, or ``None``."""
    _, values = series(rows, name)
    return values[-1] if values else None


def final_tokens(rows: Sequence[dict[str, float]]) -> float | None:
    """The last logged ``n_training_tokens``, or ``None``."""
    for row in reversed(rows):
        value = _lookup(row, _TOKEN_KEYS)
        if value is not None:
            return value
    return None


def _lookup(row: dict[str, float], keys: Sequence[str]) -> float | None:
    for key in keys:
        if key in row:
            return row[key]
        if "/" not in key:
            for name, value in row.items():
                if name.endswith(f"/{key}"):
                    return value
    return None


def _numeric(row: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _wandb_file(path: str | Path) -> Path:
    target = Path(path)
    if target.is_dir():
        found = sorted(target.glob("run-*.wandb"))
        if not found:
            raise ValueError(f"wandb_run={str(path)!r} holds no run-*.wandb file")
        return found[0]
    if not target.is_file():
        raise ValueError(f"wandb_run={str(path)!r} does not exist")
    return target


def _runner_output_path(run: Path) -> Path | None:
    runner_cfg = run / "runner_cfg.json"
    if not runner_cfg.is_file():
        return None
    output_path = json.loads(runner_cfg.read_text()).get("output_path")
    return Path(output_path) if output_path else None
