"""sae-lens-freq: frequency-weighted L1 SAEs (FreqSAE) for SAELens.

``import sae_lens_freq`` registers the architecture ``freq_weighted`` in SAELens's
registries, so ``LanguageModelSAERunnerConfig(sae=FreqWeightedTrainingSAEConfig(...))``
and ``{"architecture": "freq_weighted"}`` dicts work everywhere SAELens builds SAEs.
"""

from importlib.metadata import PackageNotFoundError, version

from sae_lens_freq.registration import register
from sae_lens_freq.saes import (
    FEATURE_FREQ_FILENAME,
    FreqWeightedSAE,
    FreqWeightedSAEConfig,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
    load_feature_freq,
)

try:
    __version__ = version("sae-lens-freq")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

register()

__all__ = [
    "FEATURE_FREQ_FILENAME",
    "FreqWeightedSAE",
    "FreqWeightedSAEConfig",
    "FreqWeightedTrainingSAE",
    "FreqWeightedTrainingSAEConfig",
    "__version__",
    "load_feature_freq",
    "register",
]
