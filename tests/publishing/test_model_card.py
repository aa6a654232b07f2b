"""The model card says what each SAE is, how well it does and how to load it."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from sae_lens_freq.publishing.model_card import CardEntry, render_model_card

META = {
    "model_name": "gemma-2-2b",
    "hook_name": "blocks.19.hook_resid_post",
    "dataset_path": "pile",
    "context_size": 128,
}


def _entries() -> list[CardEntry]:
    freq = CardEntry(
        sae_id="layer19_freq",
        cfg={
            "architecture": "standard",
            "d_in": 2304,
            "d_sae": 16384,
            "metadata": META,
        },
        training_architecture="freq_weighted",
        hyperparameters={
            "l1_coefficient": 0.04,
            "freq_coefficient": 0.5,
            "freq_ema_decay": 0.99,
        },
        training_tokens=20_000_000,
        eval_result={
            "dataset": "pile",
            "context_size": 128,
            "metrics": {"kl_div_score": 0.99721, "l0": 1947.72, "mse": None},
        },
        saebench={
            "saebench_absorption.json": {
                "eval_type_id": "absorption_first_letter",
                "eval_result_metrics": {
                    "mean": {"mean_absorption_fraction_score": 0.125}
                },
            }
        },
        has_feature_freq=True,
    )
    standard = CardEntry(
        sae_id="layer19_standard",
        cfg={
            "architecture": "standard",
            "d_in": 2304,
            "d_sae": 16384,
            "metadata": META,
        },
        training_architecture="standard",
        hyperparameters={"l1_coefficient": 0.04},
    )
    return [freq, standard]


def test_model_card_content() -> None:
    text = render_model_card("me/saes", _entries())
    card = ModelCard(text)  # huggingface_hub's own parser of the YAML header
    assert card.data.to_dict()["library_name"] == "saelens"
    assert "sae-lens" in card.data.to_dict()["tags"]
    freq_part, standard_part = text.split("## `layer19_freq`")[1].split(
        "## `layer19_standard`"
    )
    assert 'sae = SAE.from_pretrained("me/saes", "layer19_freq")' in freq_part
    assert "from sae_lens import SAE" in freq_part
    assert r"(1 + \beta f_i)" in freq_part and "feature_freq.safetensors" in freq_part
    assert (
        "| freq_coefficient | 0.5 |" in freq_part
        and "| freq_ema_decay | 0.99 |" in freq_part
    )
    assert "| training tokens | 20,000,000 |" in freq_part
    assert (
        "| KL-divergence score | 0.9972 |" in freq_part and "| L0 | 1948 |" in freq_part
    )
    assert "| MSE | n/a |" in freq_part
    assert (
        "absorption_first_letter" in freq_part
        and "| mean/mean_absorption_fraction_score | 0.125 |" in freq_part
    )
    assert 'SAE.from_pretrained("me/saes", "layer19_standard")' in standard_part
    assert r"\beta" not in standard_part and "### Metrics" not in standard_part
    assert "### SAEBench" not in standard_part
    assert "| `layer19_freq` | freq_weighted | gemma-2-2b |" in text


def test_model_card_needs_an_sae() -> None:
    with pytest.raises(ValueError, match="entries"):
        render_model_card("me/saes", [])
