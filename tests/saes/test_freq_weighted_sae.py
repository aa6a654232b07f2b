"""FreqSAE (``freq_weighted``) against independent computations written here.

Every check recomputes the expected value from the spec's formulas with plain torch
(no code from the architecture module): the sparsity loss, the firing-frequency EMA,
SAELens's coefficient warm-up, the projected-gradient Adam step with renormalisation,
the metrics and the exported files.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sae_lens.config import SAETrainerConfig
from sae_lens.registry import get_sae_class, get_sae_training_class
from sae_lens.saes.sae import (
    SAE,
    TrainingSAE,
    TrainingSAEConfig,
    TrainStepInput,
    TrainStepOutput,
)
from sae_lens.saes.standard_sae import (
    StandardSAE,
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
)
from sae_lens.training.sae_trainer import SAETrainer
from safetensors.torch import load_file, save_file

from sae_lens_freq import (
    FEATURE_FREQ_FILENAME,
    FreqWeightedSAE,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
    load_feature_freq,
)

torch.set_num_threads(1)

D_IN = 6
D_SAE = 10
BATCH = 16
CLIP_MAX_NORM = 1.0  # SAELens's trainer: clip_grad_norm_(sae.parameters(), 1.0)
THRESHOLDS = (1e-1, 1e-2, 1e-3)


def build_freq_cfg(**overrides: Any) -> FreqWeightedTrainingSAEConfig:
    """A tiny FreqSAE config; every other field keeps the class default."""
    kwargs: dict[str, Any] = {"d_in": D_IN, "d_sae": D_SAE}
    kwargs.update(overrides)
    return FreqWeightedTrainingSAEConfig(**kwargs)


def build_sae(seed: int = 0, **overrides: Any) -> FreqWeightedTrainingSAE:
    torch.manual_seed(seed)
    sae = FreqWeightedTrainingSAE(build_freq_cfg(**overrides))
    with torch.no_grad():
        # A non-zero, varied encoder bias so some features fire and some do not.
        sae.b_enc.copy_(torch.linspace(-0.3, 0.3, sae.cfg.d_sae, dtype=sae.dtype))
    return sae


def build_trainer(
    sae: TrainingSAE[Any], n_steps: int, lr: float = 1e-2
) -> SAETrainer[Any, Any]:
    cfg = SAETrainerConfig(
        total_training_samples=n_steps * BATCH,
        train_batch_size_samples=BATCH,
        lr=lr,
        lr_end=lr,
    )
    return SAETrainer(cfg=cfg, sae=sae, data_provider=iter([]))


def make_batches(n: int, d_in: int = D_IN, scale: float = 3.0, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, d_in, generator=gen) * scale for _ in range(n)]


def step_input(
    x: torch.Tensor, lam: float, beta: float, n_training_steps: int = 0
) -> TrainStepInput:
    return TrainStepInput(
        sae_in=x,
        coefficients={"l1": lam, "freq": beta},
        dead_neuron_mask=None,
        n_training_steps=n_training_steps,
        is_logging_step=False,
    )


# --- independent reference maths --------------------------------------------------


def ref_acts(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.clamp((x - p["b_dec"]) @ p["W_enc"] + p["b_enc"], min=0.0)


def ref_losses(
    x: torch.Tensor,
    p: dict[str, torch.Tensor],
    freq: torch.Tensor,
    lam: float,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mse, l1, h): MSE summed over d_in and averaged over the batch; the spec's L1."""
    h = ref_acts(x, p)
    recon = h @ p["W_dec"] + p["b_dec"]
    mse = ((recon - x) ** 2).sum(dim=1).mean()
    row_norms = torch.sqrt((p["W_dec"] ** 2).sum(dim=1))
    weights = 1.0 + beta * freq.to(x.dtype)
    l1 = lam * torch.einsum("bi,i->b", h.abs(), weights * row_norms).mean()
    return mse, l1, h


def ref_ema(freq: torch.Tensor, h: torch.Tensor, alpha: float) -> torch.Tensor:
    fired = (h > 0).to(torch.float64).mean(dim=0)
    return (alpha * freq.double() + (1 - alpha) * fired).float()


def ref_coefficient(final: float, warm_up: int, step: int) -> float:
    """The value SAELens's CoefficientScheduler hands out at 0-based step ``step``.

    It starts at 0 (warm_up > 0) and each scheduler.step() at the end of step k sets
    final * (k + 1) / warm_up while k < warm_up, else final.
    """
    if step >= warm_up:
        return final
    return final * (step / warm_up)


@dataclass
class RefRun:
    params: dict[str, torch.Tensor]
    freq: torch.Tensor
    losses: list[float]
    max_grad_norm: float


def ref_train(
    params0: dict[str, torch.Tensor],
    freq0: torch.Tensor,
    batches: list[torch.Tensor],
    cfg: FreqWeightedTrainingSAEConfig,
    lr: float,
    project_before_clip: bool = False,
) -> RefRun:
    """SAELens's step by hand: loss, backward, clip to 1.0, (project), Adam, (renorm)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    p = {k: v.detach().clone() for k, v in params0.items()}
    m = {k: torch.zeros_like(v) for k, v in p.items()}
    v2 = {k: torch.zeros_like(v) for k, v in p.items()}
    freq = freq0.clone()
    losses: list[float] = []
    max_norm = 0.0
    for n, x in enumerate(batches):
        x = x.to(p["W_dec"].dtype)
        lam = ref_coefficient(cfg.l1_coefficient, cfg.l1_warm_up_steps, n)
        beta = ref_coefficient(cfg.freq_coefficient, cfg.freq_warm_up_steps, n)
        leaves = {k: t.clone().requires_grad_(True) for k, t in p.items()}
        mse, l1, h = ref_losses(x, leaves, freq, lam, beta)
        loss = mse + l1
        names = list(leaves)
        grads = dict(
            zip(
                names,
                torch.autograd.grad(loss, [leaves[k] for k in names]),
                strict=True,
            )
        )
        losses.append(float(loss.detach()))

        def project(g: dict[str, torch.Tensor]) -> None:
            unit = p["W_dec"] / torch.sqrt((p["W_dec"] ** 2).sum(1, keepdim=True))
            g["W_dec"] = g["W_dec"] - (g["W_dec"] * unit).sum(1, keepdim=True) * unit

        if cfg.unit_norm_decoder and project_before_clip:
            project(grads)
        total = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
        max_norm = max(max_norm, total)
        clip = min(1.0, CLIP_MAX_NORM / (total + 1e-6))
        grads = {k: g * clip for k, g in grads.items()}
        if cfg.unit_norm_decoder and not project_before_clip:
            project(grads)
        t = n + 1
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v2[k] = b2 * v2[k] + (1 - b2) * g * g
            m_hat = m[k] / (1 - b1**t)
            v_hat = v2[k] / (1 - b2**t)
            p[k] = p[k] - lr * m_hat / (torch.sqrt(v_hat) + eps)
        if cfg.unit_norm_decoder:
            p["W_dec"] = p["W_dec"] / torch.sqrt((p["W_dec"] ** 2).sum(1, keepdim=True))
        freq = ref_ema(freq, h.detach(), cfg.freq_ema_decay)
    return RefRun(params=p, freq=freq, losses=losses, max_grad_norm=max_norm)


def params_of(sae: TrainingSAE[Any]) -> dict[str, torch.Tensor]:
    return {
        k: getattr(sae, k).detach().clone()
        for k in ("W_enc", "b_enc", "W_dec", "b_dec")
    }


# --- config ------------------------------------------------------------------------


def test_defaults_match_the_spec() -> None:
    cfg = build_freq_cfg()
    assert isinstance(cfg, TrainingSAEConfig)
    assert cfg.architecture() == "freq_weighted"
    assert cfg.l1_coefficient == 0.04
    assert cfg.l1_warm_up_steps == 0
    assert cfg.freq_coefficient == 0.5
    assert cfg.freq_ema_decay == 0.99
    assert cfg.freq_warm_up_steps == 1000
    assert cfg.unit_norm_decoder is True


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("l1_coefficient", -0.01, "[0, inf)"),
        ("l1_coefficient", NAN, "[0, inf)"),
        ("l1_coefficient", INF, "[0, inf)"),
        ("freq_coefficient", -1.0, "(-1, inf)"),
        ("freq_coefficient", -2.5, "(-1, inf)"),
        ("freq_coefficient", NAN, "(-1, inf)"),
        ("freq_coefficient", INF, "(-1, inf)"),
        ("freq_coefficient", -INF, "(-1, inf)"),
        ("freq_ema_decay", 1.0, "[0, 1)"),
        ("freq_ema_decay", 1.5, "[0, 1)"),
        ("freq_ema_decay", -0.01, "[0, 1)"),
        ("freq_ema_decay", NAN, "[0, 1)"),
        ("l1_warm_up_steps", -1, ">= 0"),
        ("l1_warm_up_steps", 2.5, ">= 0"),
        ("freq_warm_up_steps", -10, ">= 0"),
        ("freq_warm_up_steps", NAN, ">= 0"),
        ("d_sae", 0, ">= 1"),
        ("d_sae", -4, ">= 1"),
        ("d_in", 0, ">= 1"),
        ("decoder_init_norm", 0.0, "(0, inf)"),
        ("decoder_init_norm", NAN, "(0, inf)"),
        ("unit_norm_decoder", "yes", "bool"),
    ],
)
def test_invalid_values_raise_naming_field_value_and_range(
    field: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        build_freq_cfg(**{field: value})
    message = str(excinfo.value)
    assert field in message
    assert repr(value) in message
    assert allowed in message


@pytest.mark.parametrize(
    "overrides",
    [
        {"l1_coefficient": 0.0},
        {"freq_coefficient": -0.999},
        {"freq_ema_decay": 0.0},
        {"freq_ema_decay": 0.999999},
        {"l1_warm_up_steps": 0, "freq_warm_up_steps": 0},
        {"d_sae": 1},
        {"decoder_init_norm": None, "unit_norm_decoder": False},
    ],
)
def test_boundary_values_are_accepted(overrides: dict[str, Any]) -> None:
    cfg = build_freq_cfg(**overrides)
    for name, value in overrides.items():
        assert getattr(cfg, name) == value


def test_config_roundtrips_through_saelens_from_dict() -> None:
    cfg = build_freq_cfg(freq_coefficient=1.5, freq_ema_decay=0.9, l1_warm_up_steps=7)
    again = TrainingSAEConfig.from_dict(cfg.to_dict())
    assert type(again) is FreqWeightedTrainingSAEConfig
    assert again.to_dict() == cfg.to_dict()
    assert get_sae_training_class("freq_weighted")[1] is FreqWeightedTrainingSAEConfig


# --- loss and EMA ------------------------------------------------------------------


def test_loss_is_mse_plus_frequency_weighted_l1_with_pre_update_freq() -> None:
    sae = build_sae()
    freq0 = torch.linspace(0.0, 0.8, D_SAE)
    sae.feature_freq.copy_(freq0)
    x = make_batches(1)[0]
    lam, beta = 0.3, 1.7

    out = sae.training_forward_pass(step_input(x, lam, beta))

    mse, l1, h = ref_losses(x, params_of(sae), freq0, lam, beta)
    assert set(out.losses) == {"mse_loss", "l1_loss"}
    torch.testing.assert_close(out.feature_acts, h)
    torch.testing.assert_close(out.losses["mse_loss"], mse)
    torch.testing.assert_close(out.losses["l1_loss"], l1)
    torch.testing.assert_close(out.loss, mse + l1)
    # ...and the buffer moved once, by the EMA of this batch's firing.
    assert 0 < int((h > 0).sum()) < h.numel()
    torch.testing.assert_close(
        sae.feature_freq, ref_ema(freq0, h, sae.cfg.freq_ema_decay)
    )
    assert sae.feature_freq.dtype == torch.float32


def test_no_gradient_flows_into_feature_freq_and_grads_match_reference() -> None:
    sae = build_sae()
    freq0 = torch.linspace(0.05, 0.6, D_SAE)
    sae.feature_freq.copy_(freq0)
    x = make_batches(1)[0]
    out = sae.training_forward_pass(step_input(x, 0.5, 2.0))
    out.loss.backward()
    assert not sae.feature_freq.requires_grad
    assert "feature_freq" not in dict(sae.named_parameters())

    leaves = {k: t.requires_grad_(True) for k, t in params_of(sae).items()}
    mse, l1, _ = ref_losses(x, leaves, freq0, 0.5, 2.0)
    (mse + l1).backward()
    for name, leaf in leaves.items():
        torch.testing.assert_close(getattr(sae, name).grad, leaf.grad)


def test_beta_zero_is_the_standard_l1_penalty() -> None:
    torch.manual_seed(0)
    freq_sae = build_sae(unit_norm_decoder=False)
    freq_sae.feature_freq.fill_(0.7)
    std = StandardTrainingSAE(
        StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=0.2)
    )
    std.load_state_dict(
        {k: v for k, v in freq_sae.state_dict().items() if k != "feature_freq"}
    )
    x = make_batches(1)[0]
    ours = freq_sae.training_forward_pass(step_input(x, 0.2, 0.0))
    theirs = std.training_forward_pass(
        TrainStepInput(
            sae_in=x,
            coefficients={"l1": 0.2},
            dead_neuron_mask=None,
            n_training_steps=0,
            is_logging_step=False,
        )
    )
    torch.testing.assert_close(ours.loss, theirs.loss)
    torch.testing.assert_close(ours.losses["l1_loss"], theirs.losses["l1_loss"])


@pytest.mark.parametrize("alpha", [0.0, 0.9])
def test_feature_freq_ema_over_several_steps(alpha: float) -> None:
    sae = build_sae(freq_ema_decay=alpha)
    expected = sae.feature_freq.clone()
    fired = torch.zeros(D_SAE)
    for x in make_batches(4, seed=3):
        sae.training_forward_pass(step_input(x, 0.1, 0.5))
        h = ref_acts(x, params_of(sae))  # no optimiser step: same params
        fired = (h > 0).float().mean(dim=0)
        expected = ref_ema(expected, h, alpha)
    torch.testing.assert_close(sae.feature_freq, expected)
    if alpha == 0.0:  # f is exactly the last batch's firing rate
        torch.testing.assert_close(sae.feature_freq, fired)


# --- coefficient schedules through the real trainer ------------------------------


def test_trainer_warms_up_l1_and_freq_like_coefficient_scheduler() -> None:
    sae = build_sae(l1_warm_up_steps=2, freq_warm_up_steps=3, freq_coefficient=0.8)
    trainer = build_trainer(sae, n_steps=6)
    assert set(trainer.coefficient_schedulers) == {"l1", "freq"}

    seen: list[dict[str, float]] = []
    original = sae.calculate_aux_loss

    def recording_aux_loss(**kwargs: Any) -> Any:
        seen.append(dict(kwargs["step_input"].coefficients))
        return original(**kwargs)

    sae.calculate_aux_loss = recording_aux_loss  # type: ignore[method-assign]
    betas = []
    for x in make_batches(6):
        out = trainer.step(x)
        betas.append(out.metrics["freq/beta"])
        trainer.n_training_steps += 1

    expected_l1 = [ref_coefficient(0.04, 2, n) for n in range(6)]
    expected_freq = [ref_coefficient(0.8, 3, n) for n in range(6)]
    assert expected_freq == pytest.approx([0.0, 0.8 / 3, 1.6 / 3, 0.8, 0.8, 0.8])
    assert [s["l1"] for s in seen] == pytest.approx(expected_l1, abs=1e-12)
    assert [s["freq"] for s in seen] == pytest.approx(expected_freq, abs=1e-12)
    assert betas == pytest.approx(expected_freq, abs=1e-12)


# --- unit-norm decoder: one real SAETrainer against a hand-written step ----------


@pytest.mark.parametrize("unit_norm", [True, False])
def test_trainer_steps_match_hand_computed_projected_adam(unit_norm: bool) -> None:
    lr, n_steps = 1e-2, 3
    sae = build_sae(
        dtype="float64",
        unit_norm_decoder=unit_norm,
        l1_coefficient=0.3,
        l1_warm_up_steps=1,
        freq_coefficient=2.0,
        freq_warm_up_steps=2,
        freq_ema_decay=0.5,
    )
    params0, freq0 = params_of(sae), sae.feature_freq.clone()
    init_norms = params0["W_dec"].norm(dim=1)
    if unit_norm:
        torch.testing.assert_close(init_norms, torch.ones_like(init_norms))
    else:  # SAELens's decoder_init_norm is left alone
        torch.testing.assert_close(init_norms, torch.full_like(init_norms, 0.1))
    batches = make_batches(n_steps)

    trainer = build_trainer(sae, n_steps=n_steps, lr=lr)
    losses = []
    for x in batches:
        losses.append(float(trainer.step(x).loss.detach()))
        trainer.n_training_steps += 1

    ref = ref_train(params0, freq0, batches, sae.cfg, lr)
    assert ref.max_grad_norm > 5 * CLIP_MAX_NORM  # clipping really acted
    assert losses == pytest.approx(ref.losses, rel=1e-10)
    for name, expected in ref.params.items():
        torch.testing.assert_close(
            getattr(sae, name).detach(), expected, rtol=1e-9, atol=1e-10
        )
    torch.testing.assert_close(sae.feature_freq, ref.freq)

    norms = sae.W_dec.detach().norm(dim=1)
    if unit_norm:
        torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-12)
        # The test can tell the order apart: projecting before clipping differs.
        other = ref_train(
            params0, freq0, batches, sae.cfg, lr, project_before_clip=True
        )
        assert (other.params["W_dec"] - ref.params["W_dec"]).abs().max() > 1e-6
    else:
        assert (norms - 1).abs().max() > 1e-2


def test_unit_norm_hooks_leave_unrelated_optimizers_and_standard_saes_alone() -> None:
    freq_sae = build_sae()
    with torch.no_grad():  # rows off the unit sphere; any stray projection would show
        freq_sae.W_dec.mul_(torch.linspace(0.5, 2.0, D_SAE)[:, None])
    freq_w_dec = freq_sae.W_dec.detach().clone()

    torch.manual_seed(2)
    std = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE))
    std_before = params_of(std)
    linear = torch.nn.Linear(D_SAE, D_IN)
    linear_before = linear.weight.detach().clone()
    opt = torch.optim.Adam([*std.parameters(), *linear.parameters()], lr=1e-2)

    x = make_batches(1)[0]
    out = std.training_forward_pass(
        TrainStepInput(
            sae_in=x,
            coefficients={"l1": 1.0},
            dead_neuron_mask=None,
            n_training_steps=0,
            is_logging_step=False,
        )
    )
    (out.loss + linear(torch.ones(1, D_SAE)).pow(2).sum()).backward()
    std_grad = std.W_dec.grad.detach().clone()  # type: ignore[union-attr]
    linear_grad = linear.weight.grad.detach().clone()  # type: ignore[union-attr]
    opt.step()

    # First Adam step, by hand: p - lr * g / (|g| + eps); nothing projected.
    def first_adam(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return p - 1e-2 * g / (g.abs() + 1e-8)

    torch.testing.assert_close(
        std.W_dec.detach(), first_adam(std_before["W_dec"], std_grad)
    )
    torch.testing.assert_close(
        linear.weight.detach(), first_adam(linear_before, linear_grad)
    )
    torch.testing.assert_close(freq_sae.W_dec.detach(), freq_w_dec, rtol=0, atol=0)
    assert (std.W_dec.detach().norm(dim=1) - 1).abs().max() > 1e-2


# --- metrics and histograms --------------------------------------------------------


def _evaluate(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = value() if callable(value) else value
        out[key] = float(value)
    return out


def test_metrics_match_independent_computation_and_stay_fixed() -> None:
    sae = build_sae(freq_ema_decay=0.5)
    freq0 = torch.tensor([0.0, 5e-4, 2e-3, 5e-3, 0.02, 0.05, 0.2, 0.4, 0.9, 1.0])
    sae.feature_freq.copy_(freq0)
    x = make_batches(1)[0]
    beta = 1.3
    out: TrainStepOutput = sae.training_forward_pass(step_input(x, 0.1, beta))
    f_after = ref_ema(freq0, ref_acts(x, params_of(sae)), 0.5)
    applied = 1.0 + beta * freq0  # the weights this step's loss used
    expected = {
        "freq/beta": beta,
        "freq/feature_freq_mean": float(f_after.mean()),
        "freq/feature_freq_max": float(f_after.max()),
        "freq/penalty_weight_mean": float(applied.mean()),
        "freq/penalty_weight_max": float(applied.max()),
        **{
            f"freq/frac_above_{t:.0e}": sum(float(v) > t for v in f_after) / D_SAE
            for t in THRESHOLDS
        },
    }
    assert set(expected) <= set(out.metrics)
    assert any(callable(v) for v in out.metrics.values())  # lazy: only on log steps
    assert _evaluate(out.metrics) == pytest.approx(expected, rel=1e-6)
    # Values describe *this* step even when read after the next one.
    sae.training_forward_pass(step_input(x * 0 + 100.0, 0.1, beta))
    assert _evaluate(out.metrics) == pytest.approx(expected, rel=1e-6)


def test_log_histograms_include_log10_feature_freq() -> None:
    sae = build_sae()
    sae.feature_freq.copy_(torch.logspace(-6, 0, D_SAE))
    sae.feature_freq[0] = 0.0
    hists = sae.log_histograms()
    expected = np.log10(sae.feature_freq.numpy().astype(np.float64) + 1e-10)
    np.testing.assert_allclose(
        hists["freq/log10_feature_freq"], expected, rtol=1e-5, atol=1e-5
    )
    assert hists["freq/log10_feature_freq"][0] == pytest.approx(-10, abs=1e-3)
    np.testing.assert_allclose(
        hists["weights/W_dec_norms"], sae.W_dec.detach().norm(dim=1).numpy(), rtol=1e-6
    )
    np.testing.assert_array_equal(hists["weights/b_e"], sae.b_enc.detach().numpy())


# --- dtype -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [FreqWeightedTrainingSAE, FreqWeightedSAE])
def test_to_bfloat16_keeps_feature_freq_float32_and_exact(cls: type[Any]) -> None:
    if cls is FreqWeightedTrainingSAE:
        sae: Any = build_sae()
    else:
        sae = SAE.from_dict(
            {**build_sae().cfg.to_dict(), "architecture": "freq_weighted"}
        )
        assert type(sae) is FreqWeightedSAE
    freq = torch.tensor([1e-5, 0.0123457, 0.3333333, 0.9876543] + [0.5] * (D_SAE - 4))
    sae.feature_freq.copy_(freq)
    moved = sae.to(torch.bfloat16)
    assert moved.W_dec.dtype == torch.bfloat16
    assert moved.feature_freq.dtype == torch.float32
    torch.testing.assert_close(moved.feature_freq, freq, rtol=0, atol=0)
    assert "feature_freq" in dict(moved.named_buffers())
    back = moved.to(dtype=torch.float32, device="cpu")
    torch.testing.assert_close(back.feature_freq, freq, rtol=0, atol=0)


# --- export and checkpoints --------------------------------------------------------


@pytest.fixture
def trained_sae() -> Iterator[FreqWeightedTrainingSAE]:
    sae = build_sae(freq_coefficient=1.25, freq_ema_decay=0.9, freq_warm_up_steps=5)
    trainer = build_trainer(sae, n_steps=2)
    for x in make_batches(2):
        trainer.step(x)
        trainer.n_training_steps += 1
    assert float(sae.feature_freq.max()) > 0
    yield sae


def test_save_inference_model_writes_a_plain_standard_sae(
    trained_sae: FreqWeightedTrainingSAE, tmp_path: Path
) -> None:
    trained_sae.save_inference_model(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "standard"
    assert cfg["metadata"]["training_architecture"] == "freq_weighted"
    details = cfg["metadata"]["training_architecture_details"]
    assert details == {
        "decoder_init_norm": 0.1,
        "l1_coefficient": 0.04,
        "l1_warm_up_steps": 0,
        "freq_coefficient": 1.25,
        "freq_ema_decay": 0.9,
        "freq_warm_up_steps": 5,
        "unit_norm_decoder": True,
    }
    weights = load_file(tmp_path / "sae_weights.safetensors")
    assert set(weights) == {"W_enc", "b_enc", "W_dec", "b_dec"}
    for name, tensor in weights.items():
        torch.testing.assert_close(tensor, getattr(trained_sae, name).detach())
    freq_file = load_file(tmp_path / FEATURE_FREQ_FILENAME)
    assert set(freq_file) == {"feature_freq"}
    torch.testing.assert_close(freq_file["feature_freq"], trained_sae.feature_freq)
    torch.testing.assert_close(load_feature_freq(tmp_path), trained_sae.feature_freq)
    # Loading this folder is SAELens's plain standard SAE...
    assert get_sae_class("standard")[0] is StandardSAE


@pytest.mark.slow
def test_exported_sae_loads_without_the_plugin(
    trained_sae: FreqWeightedTrainingSAE, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    trained_sae.save_inference_model(export)
    x = make_batches(1, seed=7)[0]
    save_file({"x": x}, tmp_path / "x.safetensors")
    script = textwrap.dedent(
        f"""
        import sys
        from safetensors.torch import load_file, save_file
        from sae_lens import SAE
        from sae_lens.saes.standard_sae import StandardSAE
        sae = SAE.load_from_disk({str(export)!r})
        assert type(sae) is StandardSAE, type(sae)
        x = load_file({str(tmp_path / "x.safetensors")!r})["x"]
        acts = sae.encode(x)
        save_file(
            {{"acts": acts, "recon": sae.decode(acts)}},
            {str(tmp_path / "out.safetensors")!r},
        )
        assert "sae_lens_freq" not in sys.modules, "plugin was imported"
        print("OK", sorted(sae.state_dict()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK ['W_dec', 'W_enc', 'b_dec', 'b_enc']" in result.stdout
    out = load_file(tmp_path / "out.safetensors")
    with torch.no_grad():
        acts = trained_sae.encode(x)
        recon = trained_sae.decode(acts)
    torch.testing.assert_close(out["acts"], acts, rtol=0, atol=0)
    torch.testing.assert_close(out["recon"], recon, rtol=0, atol=0)


def test_checkpoint_loads_as_freq_weighted_sae_with_feature_freq(
    trained_sae: FreqWeightedTrainingSAE, tmp_path: Path
) -> None:
    trained_sae.save_model(tmp_path)
    assert json.loads((tmp_path / "cfg.json").read_text())["architecture"] == (
        "freq_weighted"
    )
    loaded = SAE.load_from_disk(tmp_path)
    assert type(loaded) is FreqWeightedSAE
    torch.testing.assert_close(loaded.feature_freq, trained_sae.feature_freq)
    assert loaded.feature_freq.dtype == torch.float32
    x = make_batches(1, seed=9)[0]
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), trained_sae.encode(x))
        torch.testing.assert_close(loaded(x), trained_sae(x))
    torch.testing.assert_close(load_feature_freq(tmp_path), trained_sae.feature_freq)


def test_training_sae_load_from_disk_roundtrips_feature_freq(
    trained_sae: FreqWeightedTrainingSAE, tmp_path: Path
) -> None:
    trained_sae.save_model(tmp_path)
    loaded = TrainingSAE.load_from_disk(tmp_path)
    assert type(loaded) is FreqWeightedTrainingSAE
    assert loaded.cfg.freq_coefficient == 1.25 and loaded.cfg.freq_ema_decay == 0.9
    torch.testing.assert_close(loaded.feature_freq, trained_sae.feature_freq)
    for name, tensor in params_of(trained_sae).items():
        torch.testing.assert_close(getattr(loaded, name).detach(), tensor)
    # The loaded decoder is the saved one, not re-initialised.
    assert loaded.W_dec.device.type == "cpu"


def test_load_feature_freq_rejects_folders_without_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    std_folder = tmp_path / "standard"
    StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE)).save_model(
        std_folder
    )
    for folder in (empty, std_folder, tmp_path / "missing"):
        with pytest.raises(ValueError, match=r"path=") as excinfo:
            load_feature_freq(folder)
        assert str(folder) in str(excinfo.value)
