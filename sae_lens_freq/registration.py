"""Register ``freq_weighted`` in SAELens's two registries (idempotent)."""

from typing import Any

from sae_lens.registry import (
    SAE_CLASS_REGISTRY,
    SAE_TRAINING_CLASS_REGISTRY,
    register_sae_class,
    register_sae_training_class,
)

from sae_lens_freq.saes.freq_weighted_sae import (
    ARCHITECTURE,
    FreqWeightedSAE,
    FreqWeightedSAEConfig,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
    install_optimizer_hooks,
)


def register() -> None:
    """Make SAELens know ``freq_weighted``; safe to call (or reload) any number of times.

    A stale entry left by a reloaded module (other class objects under the same name)
    is replaced; an entry with the very same classes is left alone.
    """
    _register(
        SAE_CLASS_REGISTRY, register_sae_class, (FreqWeightedSAE, FreqWeightedSAEConfig)
    )
    _register(
        SAE_TRAINING_CLASS_REGISTRY,
        register_sae_training_class,
        (FreqWeightedTrainingSAE, FreqWeightedTrainingSAEConfig),
    )
    install_optimizer_hooks()


def _register(
    registry: dict[str, Any], register_fn: Any, classes: tuple[Any, Any]
) -> None:
    if registry.get(ARCHITECTURE) == classes:
        return
    registry.pop(ARCHITECTURE, None)
    register_fn(ARCHITECTURE, *classes)
