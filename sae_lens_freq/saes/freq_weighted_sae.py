"""FreqSAE: a ReLU SAE whose L1 penalty grows with each feature's firing frequency.

Sparsity loss, per training step (``h`` the feature activations of a batch of ``B``
samples, ``f`` the firing-frequency EMA *before* this step's update)::

    L_sparse = lambda_t * (1/B) * sum_b sum_i (1 + beta_t * f_i) * |h_bi| * ||W_dec[i]||

after which, once per step and without gradient::

    f <- alpha * f + (1 - alpha) * mean_b 1[h_bi > 0]

``lambda_t`` and ``beta_t`` warm up linearly from 0 through SAELens's coefficient
schedulers (names ``"l1"`` and ``"freq"``). The total loss is SAELens's MSE term
plus ``L_sparse``.

One module holds the idea, as SAELens does for each architecture: the inference
config and class (``freq_weighted``), the training config and class. A trained
FreqSAE *exports* as a plain SAELens ``standard`` SAE (see
``FreqWeightedTrainingSAEConfig.get_inference_config_class``), so SAEBench, the Hub
and anyone with only ``sae_lens`` installed can load it; the learned
``feature_freq`` goes to ``feature_freq.safetensors`` beside the weights and the
hyperparameters to ``cfg.json``'s ``metadata.training_architecture_details``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from numpy.typing import NDArray
from sae_lens.saes.sae import (
    SAEConfig,
    TrainCoefficientConfig,
    TrainingSAE,
    TrainingSAEConfig,
    TrainStepInput,
    TrainStepOutput,
)
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
from safetensors.torch import save_file
from torch import nn
from typing_extensions import override

from sae_lens_freq.validation import check_int, check_number

ARCHITECTURE = "freq_weighted"
FEATURE_FREQ_FILENAME = "feature_freq.safetensors"
"""File written beside an exported SAE's weights, holding ``feature_freq``."""

FREQ_THRESHOLDS = (1e-1, 1e-2, 1e-3)
"""Firing-frequency thresholds whose exceedance fractions are logged."""


@dataclass
class FreqWeightedSAEConfig(StandardSAEConfig):
    """Inference config of a FreqSAE: a standard SAE that remembers ``feature_freq``.

    Only training checkpoints (``SAE.save_model``) use this architecture; the
    exported inference folder is a plain ``standard`` SAE.
    """

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE


class FreqWeightedSAE(StandardSAE):
    """Inference FreqSAE: ReLU encoder, linear decoder, plus the ``feature_freq`` buffer.

    Encoding and decoding are exactly SAELens's ``StandardSAE``; the buffer exists so
    a training checkpoint loads with ``SAE.load_from_disk`` and its frequencies can be
    inspected.
    """

    feature_freq: torch.Tensor

    def __init__(self, cfg: StandardSAEConfig, use_error_term: bool = False):
        super().__init__(cfg, use_error_term)
        _register_feature_freq(self)

    @override
    def to(self, *args: Any, **kwargs: Any) -> FreqWeightedSAE:  # type: ignore[override]
        freq = self.feature_freq
        moved = super().to(*args, **kwargs)
        _keep_feature_freq_float32(moved, freq)
        return moved


@dataclass
class FreqWeightedTrainingSAEConfig(TrainingSAEConfig):
    """Training config of a FreqSAE. Defaults are the paper's reference setup.

    Args:
        l1_coefficient: lambda, the sparsity coefficient (>= 0). Paper: 0.04.
        l1_warm_up_steps: Steps over which lambda warms up linearly from 0 (>= 0).
        freq_coefficient: beta, how much a feature's firing frequency raises its
            penalty; the weight is ``1 + beta * f``. Must be > -1 so every weight stays
            positive; negative values penalise frequent features *less* (an ablation).
            Paper: 0.5.
        freq_ema_decay: alpha, the decay of the firing-frequency EMA, in [0, 1).
            Paper: 0.99.
        freq_warm_up_steps: Steps over which beta warms up linearly from 0 (>= 0).
            Paper: 1000.
        unit_norm_decoder: Project decoder rows to unit norm after every optimiser
            step, and remove the gradient component parallel to each row before it
            (the paper's "unit-norm constraint via projection").
    """

    l1_coefficient: float = 0.04
    l1_warm_up_steps: int = 0
    freq_coefficient: float = 0.5
    freq_ema_decay: float = 0.99
    freq_warm_up_steps: int = 1000
    unit_norm_decoder: bool = True

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE

    def __post_init__(self) -> None:
        check_int("d_in", self.d_in, minimum=1)
        check_int("d_sae", self.d_sae, minimum=1)
        check_int("l1_warm_up_steps", self.l1_warm_up_steps, minimum=0)
        check_int("freq_warm_up_steps", self.freq_warm_up_steps, minimum=0)
        check_number(
            "l1_coefficient", self.l1_coefficient, "[0, inf)", lambda v: v >= 0
        )
        check_number(
            "freq_coefficient", self.freq_coefficient, "(-1, inf)", lambda v: v > -1
        )
        check_number(
            "freq_ema_decay", self.freq_ema_decay, "[0, 1)", lambda v: 0 <= v < 1
        )
        if self.decoder_init_norm is not None:
            check_number(
                "decoder_init_norm",
                self.decoder_init_norm,
                "(0, inf) or None",
                lambda v: v > 0,
            )
        if not isinstance(self.unit_norm_decoder, bool):
            raise ValueError(
                f"unit_norm_decoder must be a bool, got {self.unit_norm_decoder!r}"
            )
        super().__post_init__()

    @override
    def get_inference_config_class(self) -> type[SAEConfig]:
        # Exported FreqSAEs are plain standard SAEs: loadable without this plugin.
        return StandardSAEConfig


class FreqWeightedTrainingSAE(TrainingSAE[FreqWeightedTrainingSAEConfig]):
    """Training FreqSAE: SAELens's standard SAE with the frequency-weighted L1 penalty.

    The persistent buffer ``feature_freq`` (float32, ``(d_sae,)``, starts at 0) is the
    EMA of each feature's firing rate; it is saved in checkpoints and restored on
    resume like any weight.
    """

    b_enc: nn.Parameter
    feature_freq: torch.Tensor

    def __init__(
        self, cfg: FreqWeightedTrainingSAEConfig, use_error_term: bool = False
    ):
        super().__init__(cfg, use_error_term)
        _register_feature_freq(self)
        _UNIT_NORM_SAES.add(self)
        if cfg.unit_norm_decoder:
            self.normalize_decoder_()

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.b_enc = nn.Parameter(
            torch.zeros(self.cfg.d_sae, dtype=self.dtype, device=self.device)
        )

    @override
    def to(self, *args: Any, **kwargs: Any) -> FreqWeightedTrainingSAE:  # type: ignore[override]
        freq = self.feature_freq
        moved = super().to(*args, **kwargs)
        _keep_feature_freq_float32(moved, freq)
        return moved

    @override
    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        return {
            "l1": TrainCoefficientConfig(
                value=self.cfg.l1_coefficient, warm_up_steps=self.cfg.l1_warm_up_steps
            ),
            "freq": TrainCoefficientConfig(
                value=self.cfg.freq_coefficient,
                warm_up_steps=self.cfg.freq_warm_up_steps,
            ),
        }

    @override
    def encode_with_hidden_pre(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sae_in = self.process_sae_in(x)
        hidden_pre = self.hook_sae_acts_pre(sae_in @ self.W_enc + self.b_enc)
        feature_acts = self.hook_sae_acts_post(self.activation_fn(hidden_pre))
        return feature_acts, hidden_pre

    def penalty_weights(self, beta: float) -> torch.Tensor:
        """Per-feature penalty weight ``1 + beta * feature_freq`` (no gradient)."""
        return 1.0 + beta * self.feature_freq.detach()

    @override
    def calculate_aux_loss(
        self,
        step_input: TrainStepInput,
        feature_acts: torch.Tensor,
        hidden_pre: torch.Tensor,
        sae_out: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        lam = step_input.coefficients.get("l1", self.cfg.l1_coefficient)
        beta = step_input.coefficients.get("freq", self.cfg.freq_coefficient)
        weights = self.penalty_weights(beta).to(feature_acts.dtype)
        # (1/B) sum_b sum_i c_i |h_bi| computed as sum_i c_i mean_b |h_bi|: the same
        # sum, with one pass fewer over the (B, d_sae) activations each way.
        flat = feature_acts.abs().reshape(-1, feature_acts.shape[-1])
        per_feature = flat.mean(dim=0) * (self.W_dec.norm(dim=1) * weights)
        return {"l1_loss": lam * per_feature.sum()}

    @override
    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        # Snapshots (d_sae floats each) so the lazy metrics describe this step: the
        # f the penalty used, and the f the step leaves, even if read later.
        freq_applied = self.feature_freq.clone()
        output = super().training_forward_pass(step_input)
        self.update_feature_freq(output.feature_acts)
        beta = step_input.coefficients.get("freq", self.cfg.freq_coefficient)
        output.metrics.update(
            self._freq_metrics(beta, freq_applied, self.feature_freq.clone())
        )
        return output

    @torch.no_grad()
    def update_feature_freq(self, feature_acts: torch.Tensor) -> None:
        """``f <- alpha * f + (1 - alpha) * mean_batch(h > 0)``, in float32, in place."""
        fired = self.batch_firing_rate(feature_acts)
        alpha = self.cfg.freq_ema_decay
        self.feature_freq.mul_(alpha).add_(fired, alpha=1.0 - alpha)

    @torch.no_grad()
    def batch_firing_rate(self, feature_acts: torch.Tensor) -> torch.Tensor:
        """Fraction of the batch on which each feature fired.

        Under ``torch.distributed`` the per-rank rates are averaged over ranks (equal
        batch sizes), so every rank applies the same penalty and holds the same
        ``feature_freq`` as one process over the global batch would.
        """
        flat = feature_acts.reshape(-1, feature_acts.shape[-1])
        rate = (flat > 0).float().mean(dim=0)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(rate, op=dist.ReduceOp.SUM)
            rate /= dist.get_world_size()
        return rate

    def _freq_metrics(
        self, beta: float, freq_applied: torch.Tensor, freq: torch.Tensor
    ) -> dict[str, Any]:
        # Callables: SAELens evaluates them only on logging steps. Penalty weights
        # are the ones this step's loss applied; frequencies are after its update.
        def weight_stat(reduce: str) -> float:
            weights = 1.0 + beta * freq_applied
            return float(weights.mean() if reduce == "mean" else weights.max())

        metrics: dict[str, Any] = {
            "freq/beta": beta,
            "freq/feature_freq_mean": lambda: float(freq.mean()),
            "freq/feature_freq_max": lambda: float(freq.max()),
            "freq/penalty_weight_mean": lambda: weight_stat("mean"),
            "freq/penalty_weight_max": lambda: weight_stat("max"),
        }
        for threshold in FREQ_THRESHOLDS:
            metrics[f"freq/frac_above_{threshold:.0e}"] = lambda t=threshold: float(
                (freq > t).float().mean()
            )
        return metrics

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Project every decoder row onto the unit sphere, in place."""
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp(min=1e-8)

    @torch.no_grad()
    def remove_parallel_decoder_grad_(self) -> None:
        """Remove from ``W_dec.grad`` each row's component along that row."""
        grad = self.W_dec.grad
        if grad is None:
            return
        unit = self.W_dec.data / self.W_dec.data.norm(dim=1, keepdim=True).clamp(
            min=1e-8
        )
        grad -= (grad * unit).sum(dim=1, keepdim=True) * unit

    @override
    @torch.no_grad()
    def log_histograms(self) -> dict[str, NDArray[Any]]:
        freq = self.feature_freq.detach().float().cpu().numpy()
        return {
            **super().log_histograms(),
            "weights/b_e": self.b_enc.detach().float().cpu().numpy(),
            "freq/log10_feature_freq": np.log10(freq + 1e-10),
        }

    @override
    def process_state_dict_for_saving_inference(
        self, state_dict: dict[str, Any]
    ) -> None:
        super().process_state_dict_for_saving_inference(state_dict)
        # A plain standard SAE loads strictly: the buffer goes to its own file.
        state_dict.pop("feature_freq", None)

    @override
    def save_inference_model(self, path: str | Path) -> tuple[Path, Path]:
        weights_path, cfg_path = super().save_inference_model(path)
        save_file(
            {"feature_freq": self.feature_freq.detach().float().cpu().contiguous()},
            Path(path) / FEATURE_FREQ_FILENAME,
        )
        return weights_path, cfg_path


def load_feature_freq(path: str | Path) -> torch.Tensor:
    """Read ``feature_freq`` from an exported FreqSAE folder (or a checkpoint)."""
    from safetensors.torch import load_file

    folder = Path(path)
    freq_file = folder / FEATURE_FREQ_FILENAME
    if freq_file.exists():
        return load_file(freq_file)["feature_freq"]
    weights = folder / "sae_weights.safetensors"
    if weights.exists():
        state = load_file(weights)
        if "feature_freq" in state:
            return state["feature_freq"]
    raise ValueError(
        f"path={str(path)!r} holds no feature_freq: expected {FEATURE_FREQ_FILENAME} "
        "or a FreqSAE checkpoint's sae_weights.safetensors"
    )


# --- unit-norm decoder: one optimiser hook pair serves every FreqSAE -------------
#
# SAELens's trainer owns its optimiser and offers no post-step seam, so the
# projection hooks into torch's global optimiser step hooks. They act only on
# optimisers that hold the W_dec of a live FreqSAE with unit_norm_decoder=True.

_UNIT_NORM_SAES: weakref.WeakSet[FreqWeightedTrainingSAE] = weakref.WeakSet()


def _saes_in(optimizer: torch.optim.Optimizer) -> Iterable[FreqWeightedTrainingSAE]:
    param_ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return [
        sae
        for sae in list(_UNIT_NORM_SAES)
        if sae.cfg.unit_norm_decoder and id(sae.W_dec) in param_ids
    ]


def _before_step(optimizer: torch.optim.Optimizer, *_: Any) -> None:
    for sae in _saes_in(optimizer):
        sae.remove_parallel_decoder_grad_()


def _after_step(optimizer: torch.optim.Optimizer, *_: Any) -> None:
    for sae in _saes_in(optimizer):
        sae.normalize_decoder_()


_HOOKS_INSTALLED = False


def install_optimizer_hooks() -> None:
    """Install the unit-norm hooks once per process (idempotent)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    register_optimizer_step_pre_hook(_before_step)
    register_optimizer_step_post_hook(_after_step)
    _HOOKS_INSTALLED = True


# --- helpers -----------------------------------------------------------------


def _register_feature_freq(sae: StandardSAE | FreqWeightedTrainingSAE) -> None:
    w_dec = sae.W_dec
    sae.register_buffer(
        "feature_freq",
        torch.zeros(w_dec.shape[0], dtype=torch.float32, device=w_dec.device),
        persistent=True,
    )


def _keep_feature_freq_float32(sae: nn.Module, freq: torch.Tensor) -> None:
    # SAE.to(dtype) casts buffers too; an EMA in bf16 would stall at small rates.
    # Restore from the pre-cast tensor: casting the bf16 copy back loses precision.
    buf = sae.get_buffer("feature_freq")
    if buf.dtype != torch.float32:
        sae.feature_freq = freq.to(device=buf.device, dtype=torch.float32)
