"""Training curves of several runs against training tokens (the paper's Figure 1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sae_lens_freq.evaluation.run_logs import series

if TYPE_CHECKING:
    from sae_lens_freq.evaluation.report import RunSummary

PANELS = (
    ("loss", "Training loss", True),
    ("l0", "L0 (active features per token)", False),
    ("explained_variance", "Explained variance", False),
    ("kl_div_score", "KL-divergence score", False),
)
"""(series, title, log y-axis) of each panel."""


def plot_training_curves(rows: Sequence[RunSummary], out: str | Path) -> Path:
    """A 2x2 PNG: loss, L0, explained variance and KL score against tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    colors = plt.get_cmap("tab10")
    legend_drawn = False
    for ax, (name, title, log_y) in zip(axes.flat, PANELS, strict=True):
        plotted = False
        for i, row in enumerate(rows):
            xs, ys = series(row.log_rows, name)
            if not xs:
                continue
            style = "o-" if len(xs) < 20 else "-"
            ax.plot(xs, ys, style, ms=3, lw=1.5, color=colors(i % 10), label=row.label)
            plotted = True
        ax.set_title(title)
        ax.set_xlabel("training tokens")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        if plotted:
            if log_y and all(v > 0 for r in rows for v in series(r.log_rows, name)[1]):
                ax.set_yscale("log")
            if not legend_drawn:  # one legend: every panel uses the same colours
                ax.legend(fontsize=8)
                legend_drawn = True
        else:
            ax.text(
                0.5,
                0.5,
                "not logged by these runs",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="gray",
            )
    fig.suptitle("Training dynamics")
    fig.tight_layout()
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
