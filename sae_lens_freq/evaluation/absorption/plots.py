"""PNG plots: absorption and explained variance against L0, per contender, with error bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sae_lens_freq.evaluation.absorption.report import grouped, mean_std

PLOTS = {
    "absorption_rate": ("absorption rate", "absorption_vs_l0.png"),
    "explained_variance": ("explained variance", "explained_variance_vs_l0.png"),
}


def write_plots(records: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One PNG per metric in ``PLOTS``: mean ± std over seeds at each target L0."""
    by_contender: dict[str, list[tuple[float, float, float, float]]] = {}
    for key in PLOTS:
        for (_, label), rows in grouped(records).items():
            l0, l0_std = mean_std([r["l0"] for r in rows])
            y, y_std = mean_std([r[key] for r in rows])
            by_contender.setdefault(f"{key}|{label}", []).append((l0, y, l0_std, y_std))
    paths = []
    for key, (ylabel, filename) in PLOTS.items():
        fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
        labels = [k.split("|", 1)[1] for k in by_contender if k.startswith(f"{key}|")]
        cmap = plt.get_cmap("tab10")
        for i, label in enumerate(labels):
            pts = sorted(by_contender[f"{key}|{label}"])
            xs, ys, xerr, yerr = (list(v) for v in zip(*pts, strict=True))
            ax.errorbar(
                xs,
                ys,
                xerr=xerr,
                yerr=yerr,
                label=label,
                color=cmap(i % 10),
                marker="o",
                capsize=3,
                linewidth=1.5,
                markersize=5,
            )
        ax.set_xlabel("L0 on held-out samples (mean ± std over seeds)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} vs L0 (synthetic ground truth)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
