"""The Hub model card (``README.md``) of a repository of exported SAEs.

It says what each SAE is (training architecture and its loss, hyperparameters,
training tokens, model, hook and dataset), how well it does (``eval.json`` written
by ``sae-lens-freq eval``, SAEBench result JSONs when present) and the two lines
that load it with plain SAELens: every SAE is stored as a ``standard`` SAE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sae_lens_freq.metric_dicts import flatten

FREQ_FORMULA = (
    r"$$\mathcal{L}(x) = \|x - \hat{x}\|_2^2 + \lambda \sum_i (1 + \beta f_i)\,"
    r"|h_i|\,\|W_{\mathrm{dec},i}\|_2, \qquad "
    r"f_i \leftarrow \alpha f_i + (1 - \alpha)\,\mathbb{E}_{\mathrm{batch}}"
    r"[\mathbb{1}(h_i > 0)]$$"
)
STANDARD_FORMULA = (
    r"$$\mathcal{L}(x) = \|x - \hat{x}\|_2^2 + \lambda \sum_i |h_i|\,"
    r"\|W_{\mathrm{dec},i}\|_2$$"
)
METRIC_ROWS = (
    ("kl_div_score", "KL-divergence score"),
    ("ce_loss_score", "CE-loss score (cross-entropy preservation)"),
    ("explained_variance", "Explained variance"),
    ("cossim", "Cosine similarity"),
    ("l0", "L0"),
    ("mse", "MSE"),
    ("final_training_loss", "Final training loss"),
)
MAX_SAEBENCH_ROWS = 40


@dataclass(frozen=True)
class CardEntry:
    """One SAE of the repository, as the model card describes it.

    Args:
        sae_id: Folder of the SAE in the repository (``SAE.from_pretrained``'s id).
        cfg: The exported ``cfg.json``.
        training_architecture: The architecture it was trained as.
        hyperparameters: ``metadata.training_architecture_details``.
        training_tokens: Tokens trained on, or ``None`` if unknown.
        eval_result: ``eval.json`` from ``sae-lens-freq eval``, or ``None``.
        saebench: SAEBench result JSONs by file name.
        has_feature_freq: Whether ``feature_freq.safetensors`` is included.
    """

    sae_id: str
    cfg: dict[str, Any]
    training_architecture: str
    hyperparameters: dict[str, Any]
    training_tokens: int | None = None
    eval_result: dict[str, Any] | None = None
    saebench: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_feature_freq: bool = False


def render_model_card(repo_id: str, entries: Sequence[CardEntry]) -> str:
    """Markdown with a YAML header (``library_name: saelens``) for ``repo_id``."""
    if not entries:
        raise ValueError("entries must name at least one SAE, got none")
    models = sorted({str(_meta(e).get("model_name")) for e in entries})
    lines = [
        "---",
        "library_name: saelens",
        "tags:",
        *(f"- {tag}" for tag in ("sae", "sae-lens", "sparse-autoencoder", "freq-sae")),
        "---",
        "",
        f"# Sparse autoencoders for {', '.join(models)}",
        "",
        "Trained with [SAELens](https://github.com/decoderesearch/SAELens) and the "
        "`sae-lens-freq` plugin. Every SAE here is stored as a plain SAELens "
        "`standard` SAE (ReLU encoder, linear decoder): plain `sae_lens` loads it, "
        "no plugin needed.",
        "",
        "| SAE id | trained as | model | hook | d_in | d_sae | training tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        meta = _meta(e)
        lines.append(
            f"| `{e.sae_id}` | {e.training_architecture} | {meta.get('model_name')} "
            f"| `{meta.get('hook_name')}` | {e.cfg.get('d_in')} | {e.cfg.get('d_sae')} "
            f"| {_fmt(e.training_tokens)} |"
        )
    for e in entries:
        lines += ["", *_sae_section(repo_id, e)]
    return "\n".join(lines) + "\n"


def _sae_section(repo_id: str, e: CardEntry) -> list[str]:
    meta = _meta(e)
    lines = [
        f"## `{e.sae_id}`",
        "",
        "Load it with plain SAELens:",
        "",
        "```python",
        "from sae_lens import SAE",
        f'sae = SAE.from_pretrained("{repo_id}", "{e.sae_id}")',
        "```",
        "",
        "### Architecture",
        "",
    ]
    if e.training_architecture == "freq_weighted":
        lines += [
            "Frequency-weighted L1 SAE (FreqSAE): each feature's L1 penalty grows "
            "with its firing frequency `f_i`, an exponential moving average updated "
            "once per training step (lambda and beta warm up linearly from 0).",
            "",
            FREQ_FORMULA,
        ]
        if e.has_feature_freq:
            lines += [
                "",
                "The learned frequencies are in `feature_freq.safetensors` (key "
                "`feature_freq`, shape `(d_sae,)`) beside the weights.",
            ]
    elif e.training_architecture == "standard":
        lines += [
            "Standard ReLU SAE with the decoder-norm-weighted L1 penalty.",
            "",
            STANDARD_FORMULA,
        ]
    else:
        lines += [f"Trained as SAELens's `{e.training_architecture}` architecture."]
    lines += ["", "### Training", "", "| setting | value |", "|---|---|"]
    settings = {
        "model": meta.get("model_name"),
        "hook": meta.get("hook_name"),
        "dataset": meta.get("dataset_path"),
        "context size": meta.get("context_size"),
        "training tokens": _fmt(e.training_tokens),
        **e.hyperparameters,
    }
    lines += [f"| {k} | {_fmt(v)} |" for k, v in settings.items()]
    if e.eval_result is not None:
        metrics = e.eval_result.get("metrics", {})
        lines += [
            "",
            "### Metrics (`sae-lens-freq eval`, SAELens `run_evals`)",
            "",
            f"Dataset: {e.eval_result.get('dataset')}; "
            f"context size {e.eval_result.get('context_size')}.",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [
            f"| {label} | {_fmt(metrics.get(key))} |" for key, label in METRIC_ROWS
        ]
    if e.saebench:
        lines += ["", "### SAEBench", ""]
        for name, result in sorted(e.saebench.items()):
            lines += [*_saebench_table(name, result), ""]
        lines.pop()
    return lines


def _saebench_table(name: str, result: dict[str, Any]) -> list[str]:
    scored = result.get("eval_result_metrics", result)
    values = {
        k: v
        for k, v in flatten(scored if isinstance(scored, dict) else {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    title = result.get("eval_type_id", name)
    lines = [f"**{title}** (`{name}`)", "", "| metric | value |", "|---|---|"]
    shown = list(values.items())[:MAX_SAEBENCH_ROWS]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in shown]
    if len(values) > len(shown):
        lines.append(f"| ... | {len(values) - len(shown)} more in `{name}` |")
    return lines


def _meta(e: CardEntry) -> dict[str, Any]:
    return e.cfg.get("metadata") or {}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"
    return str(value)
