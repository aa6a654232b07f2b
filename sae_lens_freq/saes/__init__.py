"""SAE architectures this plugin adds to SAELens."""

from sae_lens_freq.saes.freq_weighted_sae import (
    FEATURE_FREQ_FILENAME,
    FreqWeightedSAE,
    FreqWeightedSAEConfig,
    FreqWeightedTrainingSAE,
    FreqWeightedTrainingSAEConfig,
    load_feature_freq,
)

__all__ = [
    "FEATURE_FREQ_FILENAME",
    "FreqWeightedSAE",
    "FreqWeightedSAEConfig",
    "FreqWeightedTrainingSAE",
    "FreqWeightedTrainingSAEConfig",
    "load_feature_freq",
]
