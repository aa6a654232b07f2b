"""A training checkpoint as the plain SAE it stands for.

A SAELens checkpoint folder holds weights trained on *scaled* activations plus the
scaling (``activation_scaler.json``); SAELens folds that scaling into the weights
only at the end of training. Anything that exports a checkpoint (publishing,
SAEBench) must fold it too, or the export expects inputs nobody will feed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sae_lens.constants import ACTIVATION_SCALER_CFG_FILENAME
from sae_lens.saes.sae import TrainingSAE
from sae_lens.training.activation_scaler import ActivationScaler


def load_with_scaling_folded(
    folder: str | Path, device: str = "cpu"
) -> TrainingSAE[Any]:
    """``TrainingSAE.load_from_disk(folder)`` with the checkpoint's activation scaling
    (norm scaling factor or whitening) folded into its weights, as SAELens's trainer
    folds it after the last step. Folders without ``activation_scaler.json`` (runner
    outputs, exports) load unchanged."""
    sae: Any = TrainingSAE.load_from_disk(folder, device=device)
    scaler_file = Path(folder) / ACTIVATION_SCALER_CFG_FILENAME
    if scaler_file.is_file():
        scaler = ActivationScaler()
        scaler.load(scaler_file)
        if scaler.scaling_factor is not None:
            sae.fold_activation_norm_scaling_factor(scaler.scaling_factor)
        if scaler.whitening is not None:
            sae.fold_activation_whitening(
                mean=scaler.whitening.mean,
                whitening_matrix=scaler.whitening.matrix,
                unwhitening_matrix=scaler.whitening.inverse_matrix,
            )
    return sae
