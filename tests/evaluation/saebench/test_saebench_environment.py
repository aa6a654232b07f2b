"""The scoped fixes around SAEBench: model serving, jaxtyping, working directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from sae_bench.evals.sparse_probing import probe_training
from transformer_lens import HookedTransformer

from sae_lens_freq.evaluation.saebench.environment import (
    jaxtyping_checks_disabled,
    model_fingerprint,
    restored_grad_mode,
    serve_model,
    working_directory,
)


def test_serve_model_answers_its_name_and_loads_others_once(
    letters_model: HookedTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_hub_loader(
        _cls: type[HookedTransformer], name: str, **kwargs: Any
    ) -> HookedTransformer:
        calls.append((name, kwargs))
        return letters_model

    monkeypatch.setattr(
        HookedTransformer, "from_pretrained_no_processing", classmethod(fake_hub_loader)
    )
    loader_before = HookedTransformer.__dict__["from_pretrained_no_processing"]
    with serve_model(letters_model, "local@1234") as counts:
        served = HookedTransformer.from_pretrained_no_processing(
            "local@1234", device="cpu", dtype=torch.float32
        )
        assert served is letters_model and calls == []
        for _ in range(3):
            HookedTransformer.from_pretrained_no_processing("gpt2", device="cpu")
        HookedTransformer.from_pretrained_no_processing("gpt2", device="meta")
    assert [name for name, _ in calls] == ["gpt2", "gpt2"]
    assert counts["real_loads"] == 2
    assert HookedTransformer.__dict__["from_pretrained_no_processing"] is loader_before


def test_fingerprint_follows_the_weights(
    letters_model: HookedTransformer,
) -> None:
    before = model_fingerprint(letters_model)
    assert model_fingerprint(letters_model) == before
    saved = letters_model.W_U[0, 0].item()
    with torch.no_grad():
        letters_model.W_U[0, 0] += 1.0
        changed = model_fingerprint(letters_model)
        letters_model.W_U[0, 0] = saved
    assert changed != before
    assert model_fingerprint(letters_model) == before


def test_sparse_probing_top_k_needs_jaxtyping_checks_off() -> None:
    # SAEBench's own top-k probe path: a jaxtyped function calling a beartyped one
    # with a narrower "d_model" trips beartype in this dependency set.
    g = torch.Generator().manual_seed(0)
    train = {
        "0": torch.randn(10, 6, generator=g) + 1,
        "1": torch.randn(10, 6, generator=g),
    }
    test = {
        "0": torch.randn(4, 6, generator=g) + 1,
        "1": torch.randn(4, 6, generator=g),
    }
    kwargs: dict[str, Any] = {
        "select_top_k": 1,
        "use_sklearn": True,
        "batch_size": 4,
        "epochs": 1,
        "lr": 1e-3,
    }
    from beartype.roar import BeartypeCallHintParamViolation

    with pytest.raises(BeartypeCallHintParamViolation):
        probe_training.train_probe_on_activations(train, test, **kwargs)
    with jaxtyping_checks_disabled():
        _, accuracies = probe_training.train_probe_on_activations(train, test, **kwargs)
    assert set(accuracies) == {"0", "1"}
    from jaxtyping import config

    assert config.jaxtyping_disable is False


def test_working_directory_and_grad_mode_are_restored(tmp_path: Path) -> None:
    start = Path.cwd()
    with working_directory(tmp_path / "a" / "b") as folder:
        assert Path.cwd() == folder == (tmp_path / "a" / "b").resolve()
    assert Path.cwd() == start
    with pytest.raises(RuntimeError), working_directory(tmp_path):
        raise RuntimeError
    assert Path(os.getcwd()) == start
    with torch.no_grad():
        with restored_grad_mode():
            torch.set_grad_enabled(True)  # what absorption's run_eval does
        assert not torch.is_grad_enabled()
