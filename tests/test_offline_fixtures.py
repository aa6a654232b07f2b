"""The offline stand-ins are what the tests claim they are."""

from pathlib import Path

import torch
from transformer_lens import HookedTransformer

from sae_lens_freq.models import load_hooked_transformer


def test_tiny_model_has_gemma2_architecture(tiny_model: HookedTransformer) -> None:
    cfg = tiny_model.cfg
    assert cfg.original_architecture == "Gemma2ForCausalLM"
    assert cfg.normalization_type == "RMS"
    assert cfg.positional_embedding_type == "rotary"
    assert cfg.gated_mlp and cfg.final_rms and cfg.use_normalization_before_and_after
    assert cfg.n_key_value_heads is not None and cfg.n_key_value_heads < cfg.n_heads
    assert cfg.attn_types is not None and set(cfg.attn_types) == {"local", "global"}
    assert cfg.window_size is not None and cfg.window_size < cfg.n_ctx
    assert cfg.attn_scores_soft_cap == 50.0 and cfg.output_logits_soft_cap == 30.0


def test_tokenizer_prepends_bos_and_roundtrips(tiny_model: HookedTransformer) -> None:
    tokens = tiny_model.to_tokens("The quick brown fox")
    assert tiny_model.tokenizer is not None
    assert tokens[0, 0].item() == tiny_model.tokenizer.bos_token_id
    assert tiny_model.to_string(tokens[0, 1:]) == "The quick brown fox"


def test_local_model_folder_roundtrips(
    tiny_model: HookedTransformer, tiny_model_dir: Path
) -> None:
    reloaded = load_hooked_transformer(tiny_model_dir)
    tokens = tiny_model.to_tokens("Local model folders reload exactly.")
    torch.testing.assert_close(reloaded(tokens), tiny_model(tokens), rtol=0, atol=0)


def test_load_rejects_a_folder_without_model(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="model_path"):
        load_hooked_transformer(tmp_path)
