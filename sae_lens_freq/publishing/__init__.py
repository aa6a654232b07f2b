"""Publishing: model cards and uploads of exported SAEs to the HuggingFace Hub."""

from sae_lens_freq.publishing.hub import (
    StagedSae,
    check_repo_id,
    default_sae_ids,
    publish,
    stage_repo,
    upload_staged,
)
from sae_lens_freq.publishing.model_card import CardEntry, render_model_card

__all__ = [
    "CardEntry",
    "StagedSae",
    "check_repo_id",
    "default_sae_ids",
    "publish",
    "render_model_card",
    "stage_repo",
    "upload_staged",
]
