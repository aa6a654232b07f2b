"""``results.md``: the benchmark's table, mean ± std over seeds per (target L0, contender)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sae_lens_freq.evaluation.absorption.config import AbsorptionBenchConfig

FAIRNESS = (
    "Equal sparsity by calibration: for every contender, seed and target L0, the "
    "sparsity knob (l1_coefficient for standard and freq_weighted, k for topk, "
    "batchtopk and matryoshka_batchtopk; integer k for topk) was searched with "
    "full-length training runs until the exported SAE's L0 on held-out samples "
    "was within the tolerance of the target. k = target is not enough: TopK's "
    "ReLU drops non-positive picks and BatchTopK exports as a JumpReLU threshold. "
    "Every row reports the measured L0."
)

COLUMNS: tuple[tuple[str, str, int], ...] = (
    # (record key, header, decimals)
    ("l0", "L0", 2),
    ("absorption_rate", "absorption", 3),
    ("parent_fnr_with_child", "parent FNR (child on)", 3),
    ("parent_fnr_without_child", "parent FNR (child off)", 3),
    ("child_parent_cosine", "cos(child latent, parent)", 3),
    ("mcc", "MCC", 3),
    ("uniqueness", "uniqueness", 3),
    ("explained_variance", "expl. var.", 3),
    ("dead_latents", "dead", 1),
)


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def grouped(
    records: Sequence[dict[str, Any]],
) -> dict[tuple[float, str], list[dict[str, Any]]]:
    """Records by (target L0, contender label), in the records' order."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["target_l0"], r["contender"]), []).append(r)
    return groups


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    headers = ["target L0", "contender", "knob", "seeds", *(h for _, h, _ in COLUMNS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for (target, label), rows in grouped(records).items():
        knob_mean, _ = mean_std([r["knob_value"] for r in rows])
        knob = f"{'λ' if rows[0]['knob'] == 'l1_coefficient' else 'k'}={knob_mean:.3g}"
        cells = [f"{target:g}", label, knob, str(len(rows))]
        for key, _, decimals in COLUMNS:
            mean, std = mean_std([r[key] for r in rows])
            cells.append(f"{mean:.{decimals}f} ± {std:.{decimals}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(
    records: Sequence[dict[str, Any]],
    cfg: AbsorptionBenchConfig,
    path: Path,
    command: str,
    wall_seconds: float,
) -> str:
    """Write ``results.md`` and return its text."""
    missed = [r for r in records if not r["l0_within_tolerance"]]
    data = cfg.data
    lines = [
        "# Ground-truth absorption benchmark",
        "",
        f"Command: `{command}`  ",
        f"Wall time: {wall_seconds:.0f} s ({cfg.workers} worker process(es), "
        "1 torch thread each)",
        "",
        f"Data: {data.n_parents} parents x {data.children_per_parent} mutually "
        f"exclusive children + {data.n_independent} independent features "
        f"({data.n_features} in d_in={data.d_in}); d_sae={cfg.width}; "
        f"{cfg.steps} steps x {cfg.batch_size} samples, Adam lr {cfg.lr:g}; "
        f"metrics on {cfg.eval_samples} held-out samples; seeds {list(cfg.seeds)}.",
        "",
        f"Fairness: {FAIRNESS} Tolerance: ±{cfg.l0_tolerance:.0%}; "
        f"{len(records) - len(missed)}/{len(records)} runs within it.",
        "",
        markdown_table(records),
        "",
        "Cells are mean ± standard deviation over seeds. absorption: over samples "
        "with a parent and one of its children active, the fraction where the "
        "parent's latent is silent while a latent carrying both directions "
        f"(decoder cosine >= {cfg.cos_threshold:g} with each) fires. parent FNR: the "
        "parent's latent is silent although the parent is active, with / without a "
        "child active. cos(child latent, parent): mean decoder cosine of each "
        "child's latent with its parent's direction.",
    ]
    if missed:
        lines += ["", "Runs outside the L0 tolerance (closest calibration run kept):"]
        lines += [
            f"- {r['contender']} seed {r['seed']} target {r['target_l0']:g}: "
            f"L0 {r['l0']:.2f}"
            for r in missed
        ]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text
