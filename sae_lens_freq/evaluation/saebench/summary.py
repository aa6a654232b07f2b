"""A table across SAEs of each eval's headline metrics (``summary.md``, ``summary.json``).

Headline metrics follow the SAEBench paper: absorption fraction (lower is better),
core's L0, explained variance and CE-loss score, SCR and TPP at 20 ablated latents
(or the largest count the run computed), and sparse probing's top-1 accuracy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sae_lens_freq.evaluation.saebench.job import NOT_ENOUGH_SIGNAL
from sae_lens_freq.metric_dicts import flatten

Metrics = dict[str, Any]
"""SAEBench's ``eval_result_metrics`` (category -> metric -> value), or a record."""

FIXED_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "absorption": [
        ("absorption", "mean.mean_absorption_fraction_score"),
        ("full absorption", "mean.mean_full_absorption_score"),
    ],
    "core": [
        ("L0", "sparsity.l0"),
        ("explained var.", "reconstruction_quality.explained_variance"),
        ("CE score", "model_performance_preservation.ce_loss_score"),
    ],
    "sparse_probing": [("top-1 probe acc.", "sae.sae_top_1_test_accuracy")],
}
THRESHOLD_PATTERNS = {
    "scr": ("SCR", r"scr_metrics\.scr_metric_threshold_(\d+)$"),
    "tpp": ("TPP", r"tpp_metrics\.tpp_threshold_(\d+)_total_metric$"),
}
PREFERRED_THRESHOLD = 20


def columns(eval_name: str, all_flat: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, flat key) of the headline metrics of one eval."""
    if eval_name in FIXED_COLUMNS:
        return FIXED_COLUMNS[eval_name]
    if eval_name not in THRESHOLD_PATTERNS:
        return []
    label, pattern = THRESHOLD_PATTERNS[eval_name]
    found: dict[int, str] = {}
    for flat in all_flat:
        for key, value in flat.items():
            match = re.match(pattern, key)
            if match and value is not None:
                found[int(match.group(1))] = key
    if not found:
        return []
    n = PREFERRED_THRESHOLD if PREFERRED_THRESHOLD in found else max(found)
    return [(f"{label}@{n}", found[n])]


def build_summary(
    results: dict[str, dict[str, Metrics]], evals: list[str]
) -> dict[str, Any]:
    """The summary as JSON-ready data: headline columns and every SAE's values."""
    table_columns: list[dict[str, str]] = []
    for eval_name in evals:
        flats = [
            flatten(per_eval[eval_name], sep=".")
            for per_eval in results.values()
            if eval_name in per_eval
            and per_eval[eval_name].get("status") != NOT_ENOUGH_SIGNAL
        ]
        for label, key in columns(eval_name, flats):
            table_columns.append({"eval": eval_name, "label": label, "metric": key})
    rows: dict[str, dict[str, Any]] = {}
    for sae_name, per_eval in results.items():
        row: dict[str, Any] = {}
        for column in table_columns:
            metrics = per_eval.get(column["eval"])
            if metrics is None:
                row[column["label"]] = None
            elif metrics.get("status") == NOT_ENOUGH_SIGNAL:
                row[column["label"]] = NOT_ENOUGH_SIGNAL
            else:
                row[column["label"]] = flatten(metrics, sep=".").get(column["metric"])
        rows[sae_name] = row
    return {"evals": evals, "columns": table_columns, "rows": rows, "results": results}


def to_markdown(summary: dict[str, Any]) -> str:
    """A markdown table: one row per SAE, one column per headline metric."""
    labels = [column["label"] for column in summary["columns"]]
    lines = [
        "| SAE | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for sae_name, row in summary["rows"].items():
        cells = [_cell(row.get(label)) for label in labels]
        lines.append(f"| {sae_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(
    out_dir: Path, results: dict[str, dict[str, Metrics]], evals: list[str]
) -> dict[str, Any]:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir``; return the summary."""
    summary = build_summary(results, evals)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out_dir / "summary.md").write_text(to_markdown(summary))
    return summary


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if value == NOT_ENOUGH_SIGNAL:
        return "not enough signal"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
