"""sae-lens-freq: frequency-weighted L1 SAEs (FreqSAE) for SAELens.

``import sae_lens_freq`` registers the architecture ``freq_weighted`` in SAELens's
registries, so ``LanguageModelSAERunnerConfig(sae=FreqWeightedTrainingSAEConfig(...))``
and ``{"architecture": "freq_weighted"}`` dicts work everywhere SAELens builds SAEs.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from sae_lens_freq.registration import register
from sae_lens_freq.saes import (
    FEATURE_FREQ_FILENAME,
    FreqWeightedSAE,
    FreqWeightedSAEConfig,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
    load_feature_freq,
)

if TYPE_CHECKING:
    from sae_lens_freq.evaluation.saebench import run_saebench

try:
    __version__ = version("sae-lens-freq")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

register()


def __getattr__(name: str) -> Any:
    # SAEBench (and its heavy imports) load only when run_saebench is asked for.
    if name == "run_saebench":
        from sae_lens_freq.evaluation.saebench import run_saebench

        return run_saebench
    raise AttributeError(f"module 'sae_lens_freq' has no attribute {name!r}")


__all__ = [
    "FEATURE_FREQ_FILENAME",
    "FreqWeightedSAE",
    "FreqWeightedSAEConfig",
    "FreqWeightedTrainingSAE",
    "FreqWeightedTrainingSAEConfig",
    "__version__",
    "load_feature_freq",
    "register",
    "run_saebench",
]
