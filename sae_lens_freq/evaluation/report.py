"""Several runs in the layout of the paper's Table 1, plus training curves.

Table 1 of the paper has one row per run and the columns ``Model | KL Divergence |
Explained Var. | L0 Sparsity | Final Loss``; the metrics it lists beside them
(cross-entropy preservation, cosine similarity) go to a second table with MSE and
training tokens. Values come from each run's ``eval.json`` (``sae-lens-freq eval``);
where a run has none, from the last value its training log holds (marked ``†``).
The final loss always comes from the training log (``metrics.jsonl`` or a W&B
offline run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sae_lens_freq.evaluation.metrics import EVAL_FILENAME, read_run
from sae_lens_freq.evaluation.run_logs import (
    final_tokens,
    final_value,
    load_training_log,
)

TABLE1_COLUMNS = (
    ("kl_div_score", "KL Divergence", 4),
    ("explained_variance", "Explained Var.", 4),
    ("l0", "L0 Sparsity", 2),
    ("final_training_loss", "Final Loss", 2),
)
"""(metric, paper column title, decimals) of Table 1."""

EXTRA_COLUMNS = (
    ("ce_loss_score", "CE Loss Score", 4),
    ("cossim", "Cosine Sim.", 4),
    ("mse", "MSE", 4),
)
_LOGGED = ("kl_div_score", "ce_loss_score", "explained_variance", "l0")
FROM_LOG_MARK = "†"


@dataclass
class RunSummary:
    """One row of the report.

    Args:
        label: Row name (``--label`` or derived: ``FW-SAE (β=0.5)``).
        path: The run folder.
        architecture: Training architecture.
        hyperparameters: ``metadata.training_architecture_details``.
        training_tokens: Tokens trained on, or ``None``.
        metrics: Metric name -> value (``None`` when unknown).
        from_log: Metrics taken from the training log rather than ``eval.json``.
        log_rows: The training log rows (for the curves).
        log_source: Where the log was read from, or ``None``.
    """

    label: str
    path: Path
    architecture: str
    hyperparameters: dict[str, Any]
    training_tokens: int | None
    metrics: dict[str, float | None]
    from_log: set[str] = field(default_factory=set)
    log_rows: list[dict[str, float]] = field(default_factory=list)
    log_source: str | None = None


def summarize_run(
    path: str | Path, label: str | None = None, wandb_dirs: Sequence[str | Path] = ()
) -> RunSummary:
    """Read a run's ``eval.json`` and training log into a report row."""
    run = read_run(path)
    eval_file = run.path / EVAL_FILENAME
    evaluated = json.loads(eval_file.read_text()) if eval_file.is_file() else {}
    metrics: dict[str, float | None] = dict(evaluated.get("metrics", {}))
    log = load_training_log(run.path, wandb_dirs)
    rows = log[0] if log else []
    from_log: set[str] = set()
    for name in _LOGGED:
        if (
            metrics.get(name) is None
            and (logged := final_value(rows, name)) is not None
        ):
            metrics[name] = logged
            from_log.add(name)
    if (final_loss := final_value(rows, "loss")) is not None:
        metrics["final_training_loss"] = final_loss
    tokens = run.training_tokens()
    if tokens is None and (logged_tokens := final_tokens(rows)) is not None:
        tokens = int(logged_tokens)
    return RunSummary(
        label=label or run.label,
        path=run.path,
        architecture=run.architecture,
        hyperparameters=run.hyperparameters,
        training_tokens=tokens,
        metrics=metrics,
        from_log=from_log,
        log_rows=rows,
        log_source=log[1] if log else None,
    )


def summarize_runs(
    paths: Sequence[str | Path],
    labels: Sequence[str] = (),
    wandb_dirs: Sequence[str | Path] = (),
) -> list[RunSummary]:
    """Rows for ``paths``; ``labels`` name the first runs, the rest are derived."""
    if len(labels) > len(paths):
        raise ValueError(f"labels has {len(labels)} entries for {len(paths)} runs")
    given = list(labels) + [None] * (len(paths) - len(labels))
    rows = [
        summarize_run(p, lab, wandb_dirs) for p, lab in zip(paths, given, strict=True)
    ]
    _disambiguate([r for r, lab in zip(rows, given, strict=True) if lab is None], rows)
    return rows


def table1_markdown(rows: Sequence[RunSummary]) -> str:
    """The paper's Table 1, then the other paper metrics, as markdown."""
    if not rows:
        raise ValueError("rows must hold at least one run, got none")
    lines = _table(rows, TABLE1_COLUMNS)
    lines += [
        "",
        "Other metrics the paper reports:",
        "",
        *_table(rows, EXTRA_COLUMNS, tokens=True),
    ]
    notes = [
        "KL Divergence and CE Loss Score are SAELens's scores: 1 means splicing the "
        "SAE in leaves the model's next-token predictions unchanged, 0 is no better "
        "than zero-ablating the hook. Final Loss is the last logged training loss.",
    ]
    if any(r.from_log for r in rows):
        notes.append(
            f"{FROM_LOG_MARK} from the run's training log (no `eval.json`; run "
            "`sae-lens-freq eval` for held-out values)."
        )
    return "\n".join([*lines, "", "\n\n".join(notes)]) + "\n"


def write_report(
    rows: Sequence[RunSummary], out_dir: str | Path, title: str = "Results"
) -> dict[str, Path]:
    """Write ``report.md``, ``table1.json`` and ``training_curves.png`` into ``out_dir``."""
    from sae_lens_freq.evaluation.report_plots import plot_training_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = plot_training_curves(rows, out / "training_curves.png")
    sources = [
        f"- {r.label}: `{r.path}` (log: {r.log_source or 'none found'})" for r in rows
    ]
    report = [
        f"# {title}",
        "",
        table1_markdown(rows),
        "Table 1: Performance comparison (layout of the paper's Table 1).",
        "",
        "![Training curves](training_curves.png)",
        "",
        "Runs:",
        "",
        *sources,
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
    table = [
        {
            "label": r.label,
            "run": str(r.path),
            "architecture": r.architecture,
            "hyperparameters": r.hyperparameters,
            "training_tokens": r.training_tokens,
            "metrics": r.metrics,
            "from_training_log": sorted(r.from_log),
        }
        for r in rows
    ]
    (out / "table1.json").write_text(json.dumps(table, indent=2) + "\n")
    return {"report": out / "report.md", "table": out / "table1.json", "curves": curves}


def _table(
    rows: Sequence[RunSummary],
    columns: Sequence[tuple[str, str, int]],
    tokens: bool = False,
) -> list[str]:
    titles = ["Model", *(title for _, title, _ in columns)] + (
        ["Training Tokens"] if tokens else []
    )
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for r in rows:
        cells = [r.label]
        for name, _, decimals in columns:
            value = r.metrics.get(name)
            mark = FROM_LOG_MARK if name in r.from_log else ""
            cells.append("n/a" if value is None else f"{value:.{decimals}f}{mark}")
        if tokens:
            cells.append(_tokens(r.training_tokens))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _tokens(n: int | None) -> str:
    if n is None:
        return "n/a"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def _disambiguate(derived: Sequence[RunSummary], rows: Sequence[RunSummary]) -> None:
    """Derived labels that collide get the training tokens, then a counter."""
    clashing = [r for r in derived if sum(o.label == r.label for o in rows) > 1]
    for r in clashing:
        base = r.label[:-1] + ", " if r.label.endswith(")") else r.label + " ("
        r.label = f"{base}{_tokens(r.training_tokens)} tokens)"
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label} #{seen[r.label]}"
