"""``import sae_lens_freq`` registers ``freq_weighted`` in both SAELens registries.

Registration must be idempotent: importing, calling ``register()`` or
``importlib.reload`` any number of times never raises and always leaves the
registries pointing at the live classes.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY
from sae_lens.saes.sae import SAE, TrainingSAE
from sae_lens.saes.standard_sae import StandardSAE, StandardTrainingSAE
from torch.optim.optimizer import (
    _global_optimizer_post_hooks,
    _global_optimizer_pre_hooks,
)

import sae_lens_freq
import sae_lens_freq.registration
from sae_lens_freq import (
    FreqWeightedSAE,
    FreqWeightedSAEConfig,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
)

ARCH = "freq_weighted"


def assert_registered() -> None:
    assert SAE_CLASS_REGISTRY[ARCH] == (FreqWeightedSAE, FreqWeightedSAEConfig)
    assert SAE_TRAINING_CLASS_REGISTRY[ARCH] == (
        FreqWeightedTrainingSAE,
        FreqWeightedTrainingSAEConfig,
    )


def n_global_optimizer_hooks() -> tuple[int, int]:
    # Private torch dicts, read only to prove the hooks are not piled up.
    return len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks)


@pytest.fixture
def restore_registries() -> Iterator[None]:
    saved = (dict(SAE_CLASS_REGISTRY), dict(SAE_TRAINING_CLASS_REGISTRY))
    yield
    SAE_CLASS_REGISTRY.clear()
    SAE_CLASS_REGISTRY.update(saved[0])
    SAE_TRAINING_CLASS_REGISTRY.clear()
    SAE_TRAINING_CLASS_REGISTRY.update(saved[1])


def test_import_registers_in_both_registries() -> None:
    assert_registered()
    assert SAE_CLASS_REGISTRY["standard"][0] is StandardSAE
    assert SAE_TRAINING_CLASS_REGISTRY["standard"][0] is StandardTrainingSAE


@pytest.mark.usefixtures("restore_registries")
def test_register_and_reload_twice_do_not_raise_or_pile_up_hooks() -> None:
    hooks_before = n_global_optimizer_hooks()
    sae_lens_freq.register()
    sae_lens_freq.register()
    for _ in range(2):
        importlib.reload(sae_lens_freq.registration)
        importlib.reload(sae_lens_freq)
    assert_registered()
    assert n_global_optimizer_hooks() == hooks_before


@pytest.mark.usefixtures("restore_registries")
def test_stale_entries_are_replaced() -> None:
    class StaleSAE:  # what a reloaded module leaves behind: other class objects
        pass

    stale: Any = (StaleSAE, StaleSAE)
    SAE_CLASS_REGISTRY[ARCH] = stale
    SAE_TRAINING_CLASS_REGISTRY[ARCH] = stale
    sae_lens_freq.register()
    assert_registered()


def test_saelens_builds_freq_weighted_from_dicts() -> None:
    cfg = FreqWeightedTrainingSAEConfig(d_in=4, d_sae=8, freq_coefficient=0.25)
    as_dict = cfg.to_dict()
    assert as_dict["architecture"] == ARCH
    training = TrainingSAE.from_dict(as_dict)
    assert type(training) is FreqWeightedTrainingSAE
    assert training.cfg.freq_coefficient == 0.25
    inference = SAE.from_dict(as_dict)
    assert type(inference) is FreqWeightedSAE
    assert inference.feature_freq.shape == (8,)


@pytest.mark.slow
def test_reloading_every_module_in_a_fresh_process() -> None:
    """Reload the architecture module too (new class objects) in a clean process."""
    script = textwrap.dedent(
        """
        import importlib
        import torch
        from sae_lens.config import SAETrainerConfig
        from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY
        from sae_lens.saes.sae import TrainingSAE
        from sae_lens.training.sae_trainer import SAETrainer
        import sae_lens_freq
        import sae_lens_freq.registration
        import sae_lens_freq.saes
        import sae_lens_freq.saes.freq_weighted_sae as arch

        for _ in range(2):
            arch = importlib.reload(arch)
            importlib.reload(sae_lens_freq.saes)
            importlib.reload(sae_lens_freq.registration)
            importlib.reload(sae_lens_freq)
        assert SAE_CLASS_REGISTRY["freq_weighted"] == (
            arch.FreqWeightedSAE, arch.FreqWeightedSAEConfig)
        assert SAE_TRAINING_CLASS_REGISTRY["freq_weighted"] == (
            arch.FreqWeightedTrainingSAE, arch.FreqWeightedTrainingSAEConfig)

        sae = TrainingSAE.from_dict({"architecture": "freq_weighted", "d_in": 4,
                                     "d_sae": 8})
        assert type(sae) is arch.FreqWeightedTrainingSAE
        trainer = SAETrainer(
            cfg=SAETrainerConfig(total_training_samples=32,
                                 train_batch_size_samples=16, lr_end=3e-4),
            sae=sae, data_provider=iter([]))
        trainer.step(torch.randn(16, 4) * 3)
        norms = sae.W_dec.detach().norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6), norms
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
