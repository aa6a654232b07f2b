"""The paper's metrics of one trained SAE, computed by SAELens's own evaluation code.

``evaluate_run(RUN)`` loads the SAE saved in a run (a runner ``output_path`` or a
training checkpoint), rebuilds the run's model and ``ActivationsStore`` from its
``runner_cfg.json`` and calls ``sae_lens.evals.run_evals``. The flat ``metrics``
block of the result holds what the paper reports:

- ``kl_div_score``: ``(KL_ablation - KL_sae) / KL_ablation``; 1 means splicing the
  SAE in leaves the next-token distribution unchanged (the paper's "KL divergence").
- ``ce_loss_score``: ``(CE_ablation - CE_sae) / (CE_ablation - CE_clean)``
  ("cross-entropy preservation").
- ``explained_variance``: ``1 - E||x - x_hat||^2 / Var(x)``.
- ``cossim``: mean cosine similarity of ``x`` and ``x_hat``.
- ``l0``: mean number of active features per token.
- ``mse``: mean over tokens of ``||x - x_hat||^2``.
- ``final_training_loss``: the last ``losses/overall_loss`` the run logged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE, ActivationsStore, LanguageModelSAERunnerConfig
from sae_lens.evals import EvalConfig, run_evals
from sae_lens.training.activation_scaler import ActivationScaler
from transformer_lens.hook_points import HookedRootModule

import sae_lens_freq  # noqa: F401  (registers freq_weighted: checkpoints load)
from sae_lens_freq.evaluation.run_logs import (
    final_tokens,
    final_value,
    load_training_log,
)

EVAL_FILENAME = "eval.json"
"""Where ``sae-lens-freq eval`` writes its result by default, inside the run folder."""

METRIC_NAMES = (
    "kl_div_score",
    "ce_loss_score",
    "explained_variance",
    "cossim",
    "l0",
    "mse",
    "final_training_loss",
)
"""Keys of the flat ``metrics`` block of an eval result."""


@dataclass
class EvalSettings:
    """How to evaluate a run.

    Args:
        n_eval_reconstruction_batches: Batches of prompts for the KL and CE scores
            (>= 1).
        n_eval_sparsity_variance_batches: Batches of prompts for L0, explained
            variance, cosine similarity and MSE (>= 1).
        batch_size_prompts: Prompts (of ``context_size`` tokens) per batch (>= 1), or
            ``None`` for the run's ``store_batch_size_prompts``.
        dataset: Dataset path or hub name replacing the run's ``dataset_path``, or
            ``None`` to evaluate on the run's own dataset.
        model_path: A local model folder (``sae_lens_freq.models``) to use instead of
            loading the run's ``model_name`` with SAELens's ``load_model``.
        device: Torch device for the model, the SAE and the activations.
        exclude_special_tokens: Leave BOS/EOS/PAD positions out of every metric
            (SAELens's evaluation default).
    """

    n_eval_reconstruction_batches: int = 10
    n_eval_sparsity_variance_batches: int = 10
    batch_size_prompts: int | None = None
    dataset: str | None = None
    model_path: str | None = None
    device: str = "cpu"
    exclude_special_tokens: bool = True

    def __post_init__(self) -> None:
        for name in (
            "n_eval_reconstruction_batches",
            "n_eval_sparsity_variance_batches",
        ):
            _check_positive_int(name, getattr(self, name))
        if self.batch_size_prompts is not None:
            _check_positive_int("batch_size_prompts", self.batch_size_prompts)
        if self.model_path is not None and not Path(self.model_path).is_dir():
            raise ValueError(
                f"model_path={self.model_path!r} must be an existing local model folder"
            )


@dataclass(frozen=True)
class RunFolder:
    """What a run left on disk: ``cfg.json`` and, when present, ``runner_cfg.json``.

    Args:
        path: The folder (a runner ``output_path`` or a training checkpoint).
        cfg: ``cfg.json`` (an inference config, or a training config in a checkpoint).
        runner_cfg: ``runner_cfg.json`` (the full ``LanguageModelSAERunnerConfig``),
            or ``None``.
        is_checkpoint: True for a training checkpoint (it holds ``trainer_state.pt``).
    """

    path: Path
    cfg: dict[str, Any]
    runner_cfg: dict[str, Any] | None
    is_checkpoint: bool

    @property
    def metadata(self) -> dict[str, Any]:
        return self.cfg.get("metadata") or {}

    @property
    def architecture(self) -> str:
        """The *training* architecture (``freq_weighted`` for an exported FreqSAE)."""
        return self.metadata.get("training_architecture") or self.cfg["architecture"]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.metadata.get("training_architecture_details") or {})

    @property
    def label(self) -> str:
        """Row name in the paper's style: ``Standard SAE``, ``FW-SAE (β=0.5)``."""
        if self.architecture == "freq_weighted":
            return f"FW-SAE (β={self.hyperparameters.get('freq_coefficient', '?')})"
        return f"{self.architecture.replace('_', ' ').title()} SAE"

    @property
    def slug(self) -> str:
        """A path-safe name: ``standard``, ``freq_weighted-beta0.5``."""
        if self.architecture == "freq_weighted":
            return f"freq_weighted-beta{self.hyperparameters.get('freq_coefficient')}"
        return self.architecture

    def training_tokens(self) -> int | None:
        """Tokens trained on: the checkpoint's counter, else the runner config's."""
        state = self.path / "trainer_state.pt"
        if state.is_file():
            saved = torch.load(state, map_location="cpu", weights_only=True)
            return int(saved["n_training_samples"])
        if self.runner_cfg is not None and "training_tokens" in self.runner_cfg:
            return int(self.runner_cfg["training_tokens"])
        return None


def read_run(path: str | Path) -> RunFolder:
    """Read a run folder; ``ValueError`` if it holds no SAE."""
    folder = Path(path)
    if (
        not (folder / "cfg.json").is_file()
        or not (folder / "sae_weights.safetensors").is_file()
    ):
        raise ValueError(
            f"run={str(path)!r} is not an SAE run folder: it needs cfg.json and "
            "sae_weights.safetensors (a runner output_path or a checkpoint)"
        )
    runner_file = folder / "runner_cfg.json"
    return RunFolder(
        path=folder,
        cfg=json.loads((folder / "cfg.json").read_text()),
        runner_cfg=json.loads(runner_file.read_text())
        if runner_file.is_file()
        else None,
        is_checkpoint=(folder / "trainer_state.pt").is_file(),
    )


def load_sae_for_eval(run: RunFolder, device: str) -> tuple[SAE[Any], ActivationScaler]:
    """The SAE and the activation scaling it expects (unfolded in a checkpoint)."""
    sae = SAE.load_from_disk(run.path, device=device)
    scaler = ActivationScaler()
    scaler_file = run.path / "activation_scaler.json"
    if run.is_checkpoint and scaler_file.is_file():
        scaler.load(scaler_file)
    return sae, scaler


def load_eval_model(run: RunFolder, settings: EvalSettings) -> HookedRootModule:
    """The run's model: ``--model-path`` if given, the local model folder the run was
    trained on (its ``model_name``), else SAELens's ``load_model`` by name."""
    from sae_lens_freq.models import is_local_model_folder, load_hooked_transformer

    source = run.runner_cfg or run.metadata
    model_path = settings.model_path
    if model_path is None and is_local_model_folder(source.get("model_name")):
        model_path = source["model_name"]
    if model_path is not None:
        return load_hooked_transformer(model_path, device=settings.device)
    from sae_lens.load_model import load_model

    return load_model(
        source.get("model_class_name") or "HookedTransformer",
        source["model_name"],
        device=settings.device,
        model_from_pretrained_kwargs=source.get("model_from_pretrained_kwargs"),
        hook_names=[source["hook_name"]],
    )


def build_activation_store(
    model: HookedRootModule, run: RunFolder, sae: SAE[Any], settings: EvalSettings
) -> ActivationsStore:
    """The run's ``ActivationsStore`` (dataset, context size, BOS, ...) for evaluation."""
    if run.runner_cfg is None:
        dataset = settings.dataset or run.metadata.get("dataset_path")
        if not dataset:
            raise ValueError(
                f"run={str(run.path)!r} has no runner_cfg.json and no dataset_path: "
                "pass dataset (--dataset)"
            )
        return ActivationsStore.from_sae(
            model, sae, dataset=dataset, device=settings.device
        )
    cfg_dict = json.loads(json.dumps(run.runner_cfg))
    if settings.dataset is not None:
        cfg_dict["dataset_path"] = settings.dataset
    for key in ("device", "llm_device", "act_store_device"):
        cfg_dict[key] = settings.device
    cfg_dict["sae"]["device"] = settings.device
    cfg_dict["resume_from_checkpoint"] = None
    runner_cfg = LanguageModelSAERunnerConfig.from_dict(cfg_dict)
    return ActivationsStore.from_config(model, runner_cfg)


def evaluate_run(
    path: str | Path,
    settings: EvalSettings | None = None,
    model: HookedRootModule | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Evaluate the SAE in ``path``; ``model`` skips loading the run's model.

    Returns a JSON-ready dict: ``metrics`` (see ``METRIC_NAMES``; ``None`` where a
    value is unavailable), SAELens's grouped ``saelens_metrics``, the run's model,
    hook, dataset, architecture, hyperparameters and training tokens.
    """
    settings = settings or EvalSettings()
    run = read_run(path)
    sae, scaler = load_sae_for_eval(run, settings.device)
    lm: HookedRootModule = (
        model if model is not None else load_eval_model(run, settings)
    )
    store = build_activation_store(lm, run, sae, settings)
    eval_config = EvalConfig(
        batch_size_prompts=settings.batch_size_prompts,
        n_eval_reconstruction_batches=settings.n_eval_reconstruction_batches,
        n_eval_sparsity_variance_batches=settings.n_eval_sparsity_variance_batches,
        compute_kl=True,
        compute_ce_loss=True,
        compute_l2_norms=True,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
    )
    grouped, _ = run_evals(
        sae=sae,
        activation_store=store,
        model=lm,
        activation_scaler=scaler,
        eval_config=eval_config,
        exclude_special_tokens=settings.exclude_special_tokens,
        verbose=verbose,
    )
    flat = {k: v for group in grouped.values() for k, v in group.items()}
    log = load_training_log(run.path)
    rows = log[0] if log else []
    metrics = {name: flat.get(name) for name in METRIC_NAMES}
    metrics["final_training_loss"] = final_value(rows, "loss")
    tokens = run.training_tokens()
    if tokens is None and rows:
        logged = final_tokens(rows)
        tokens = int(logged) if logged is not None else None
    return _json_ready(
        {
            "run": str(run.path),
            "checkpoint": run.is_checkpoint,
            "model_name": (run.runner_cfg or run.metadata).get("model_name"),
            "hook_name": sae.cfg.metadata.hook_name,
            "dataset": store_dataset_name(run, settings),
            "context_size": store.context_size,
            "architecture": run.architecture,
            "hyperparameters": run.hyperparameters,
            "training_tokens": tokens,
            "metrics": metrics,
            "saelens_metrics": grouped,
            "training_log": log[1] if log else None,
            "eval_config": {
                **asdict(eval_config),
                "exclude_special_tokens": settings.exclude_special_tokens,
            },
        }
    )


def store_dataset_name(run: RunFolder, settings: EvalSettings) -> str | None:
    """The dataset an evaluation of ``run`` reads."""
    if settings.dataset is not None:
        return settings.dataset
    return (run.runner_cfg or run.metadata).get("dataset_path")


def write_eval(result: dict[str, Any], out: str | Path) -> Path:
    """Write an eval result as indented JSON."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    return target


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
