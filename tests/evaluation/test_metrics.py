"""`sae-lens-freq eval`: SAELens's metrics of a real tiny run, checked independently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from sae_lens import (
    ActivationsStore,
    LanguageModelSAETrainingRunner,
)
from safetensors.torch import load_file
from transformer_lens import HookedTransformer

from sae_lens_freq.cli import main as cli_main
from sae_lens_freq.evaluation.metrics import (
    METRIC_NAMES,
    EvalSettings,
    evaluate_run,
    read_run,
)
from sae_lens_freq.training.presets import tiny_offline_config

HOOK = "blocks.1.hook_resid_post"  # conftest.TINY_HOOK


def train_tiny_run(
    model: HookedTransformer, dataset_dir: Path, out: Path, n_checkpoints: int = 0
) -> Path:
    """A real FreqSAE runner output (and checkpoints under ``out/ckpt``)."""
    cfg = tiny_offline_config(
        str(dataset_dir),
        d_sae=128,
        l1_coefficient=0.01,
        training_tokens=4096,
        train_batch_size_tokens=256,
        lr=1e-3,
        lr_end=1e-4,
        seed=0,
        output_path=str(out / "run"),
        checkpoint_path=str(out / "ckpt"),
        n_checkpoints=n_checkpoints,
    )
    LanguageModelSAETrainingRunner(cfg, override_model=model).run()
    return out / "run"


@pytest.fixture(scope="module")
def tiny_run(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    run = train_tiny_run(
        tiny_model, text_dataset_dir, tmp_path_factory.mktemp("evalrun"), 1
    )
    # what the plugin's runner logs (metrics.jsonl schema), last loss 2.5
    rows = [
        {"step": s, "n_training_tokens": 256 * (s + 1), "losses/overall_loss": loss}
        for s, loss in enumerate([9.0, 4.0, 2.5])
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _special_ids(model: HookedTransformer) -> list[int]:
    tok = model.tokenizer
    assert tok is not None
    return [
        int(i)  # type: ignore[arg-type]
        for i in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        if i is not None
    ]


@torch.no_grad()
def _independent_metrics(
    model: HookedTransformer,
    weights: dict[str, torch.Tensor],
    recon_batches: list[torch.Tensor],
    sparsity_batches: list[torch.Tensor],
) -> dict[str, float]:
    """L0, explained variance, MSE, cosine and KL score, written from the formulas."""
    special = torch.tensor(_special_ids(model))
    W_enc, b_enc, W_dec, b_dec = (
        weights[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")
    )

    def reconstruct(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = torch.relu((x - b_dec) @ W_enc + b_enc)
        return acts, acts @ W_dec + b_dec

    xs, acts_all, outs = [], [], []
    for tokens in sparsity_batches:
        _, cache = model.run_with_cache(tokens, names_filter=[HOOK])
        keep = ~torch.isin(tokens, special)
        x = cache[HOOK][keep]
        acts, x_hat = reconstruct(x)
        xs.append(x)
        acts_all.append(acts)
        outs.append(x_hat)
    x, acts, x_hat = (
        torch.cat(xs).double(),
        torch.cat(acts_all),
        torch.cat(outs).double(),
    )
    resid = (x - x_hat).pow(2).sum(-1)
    total_var = (x - x.mean(0)).pow(2).sum(-1).mean()

    kl_sae, kl_abl = [], []
    for tokens in recon_batches:
        keep = ~torch.isin(tokens, special)
        clean = torch.log_softmax(model(tokens), -1)

        def splice(
            act: torch.Tensor,
            hook: Any,  # noqa: ARG001
            keep: torch.Tensor = keep,
        ) -> torch.Tensor:
            return torch.where(keep[..., None], reconstruct(act)[1], act)

        def ablate(act: torch.Tensor, hook: Any) -> torch.Tensor:  # noqa: ARG001
            return torch.zeros_like(act)

        for hook_fn, out in ((splice, kl_sae), (ablate, kl_abl)):
            new = torch.log_softmax(
                model.run_with_hooks(tokens, fwd_hooks=[(HOOK, hook_fn)]), -1
            )
            kl = (clean.exp() * (clean - new)).sum(-1)
            out.append(kl[keep])
    mean_sae, mean_abl = torch.cat(kl_sae).mean(), torch.cat(kl_abl).mean()
    return {
        "l0": float((acts > 0).float().sum(-1).mean()),
        "explained_variance": float(1 - resid.mean() / total_var),
        "mse": float(resid.mean()),
        "cossim": float(torch.nn.functional.cosine_similarity(x, x_hat, dim=-1).mean()),
        "kl_div_score": float((mean_abl - mean_sae) / mean_abl),
    }


def test_eval_matches_independent_computation(
    tiny_run: Path, tiny_model: HookedTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Record (without changing) the token batches SAELens's evaluation draws.
    drawn: list[torch.Tensor] = []
    original = ActivationsStore.get_batch_tokens

    def recording(self: ActivationsStore, *args: Any, **kwargs: Any) -> torch.Tensor:
        tokens = original(self, *args, **kwargs)
        drawn.append(tokens.clone())
        return tokens

    monkeypatch.setattr(ActivationsStore, "get_batch_tokens", recording)
    settings = EvalSettings(
        n_eval_reconstruction_batches=2, n_eval_sparsity_variance_batches=3
    )
    result = evaluate_run(tiny_run, settings, model=tiny_model, verbose=False)

    assert set(result["metrics"]) == set(METRIC_NAMES)
    assert result["architecture"] == "freq_weighted"
    assert result["hyperparameters"]["freq_coefficient"] == 0.5
    assert result["hook_name"] == HOOK and result["training_tokens"] == 4096
    assert result["metrics"]["final_training_loss"] == 2.5
    assert len(drawn) == 5  # reconstruction batches first, then sparsity batches
    weights = load_file(tiny_run / "sae_weights.safetensors")
    expected = _independent_metrics(tiny_model, weights, drawn[:2], drawn[2:])
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    assert 0 < expected["l0"] < 128
    assert result["metrics"]["ce_loss_score"] is not None


def test_eval_cli_on_a_checkpoint_writes_json(
    tiny_run: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner_cfg = json.loads((tiny_run / "runner_cfg.json").read_text())
    (checkpoint,) = Path(runner_cfg["checkpoint_path"]).iterdir()
    assert read_run(checkpoint).is_checkpoint
    code = cli_main(
        [
            "eval",
            str(checkpoint),
            "--model-path",
            str(tiny_model_dir),
            "--n-batches",
            "2",
        ]
    )
    assert code == 0
    result = json.loads((checkpoint / "eval.json").read_text())
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    assert result["checkpoint"] is True
    assert result["training_tokens"] == state["n_training_samples"] < 4096
    # the checkpoint's runner_cfg points at output_path, where metrics.jsonl lives
    assert result["metrics"]["final_training_loss"] == 2.5
    assert all(result["metrics"][k] is not None for k in METRIC_NAMES)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["l0"] == result["metrics"]["l0"]


def test_eval_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"n_eval_reconstruction_batches.*>= 1.*0"):
        EvalSettings(n_eval_reconstruction_batches=0)
    with pytest.raises(ValueError, match="batch_size_prompts"):
        EvalSettings(batch_size_prompts=-3)
    with pytest.raises(ValueError, match="model_path"):
        EvalSettings(model_path=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"run=.*cfg\.json"):
        read_run(tmp_path)
    assert cli_main(["eval", str(tmp_path), "--n-batches", "1"]) == 2
    assert cli_main(["eval", str(tmp_path), str(tmp_path), "--out", "x.json"]) == 2


def test_a_run_on_a_local_model_folder_is_evaluated_without_being_told(
    tiny_run: Path, tiny_model: HookedTransformer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """``train --model-path`` records the folder as ``model_name``; eval finds it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    runner_cfg = json.loads((run / "runner_cfg.json").read_text())
    runner_cfg["model_name"] = str(tiny_model_dir.resolve())
    (run / "runner_cfg.json").write_text(json.dumps(runner_cfg))
    settings = EvalSettings(
        n_eval_reconstruction_batches=1, n_eval_sparsity_variance_batches=1
    )
    found = evaluate_run(run, settings, verbose=False)  # no model, no model_path
    given = evaluate_run(run, settings, model=tiny_model, verbose=False)
    assert found["metrics"] == given["metrics"]
