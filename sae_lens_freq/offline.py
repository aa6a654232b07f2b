"""Tiny offline stand-ins for a language model and its data.

Used by the tests, the benchmarks and anyone who wants to try the training path
without downloading anything: a byte-level BPE tokenizer trained on the Python
standard library's own documentation, a random-weight ``HookedTransformer`` with
Gemma-2's architecture fields shrunk (RMS norm, rotary, GQA, alternating
local/global attention, soft-capping, gated MLP), and a local ``train.jsonl``
text dataset. Everything runs through the real TransformerLens and SAELens code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>")


def corpus_texts(n_docs: int | None = None, min_chars: int = 200) -> list[str]:
    """English prose from ``pydoc_data.topics`` (ships with CPython), one doc per topic."""
    from pydoc_data.topics import topics

    texts = [
        re.sub(r"\s+", " ", text).strip()
        for _, text in sorted(topics.items())
        if len(text) >= min_chars
    ]
    return texts if n_docs is None else texts[:n_docs]


def train_tokenizer(
    out_dir: str | Path, vocab_size: int = 512, extra_texts: list[str] | None = None
) -> Path:
    """Train a byte-level BPE on the offline corpus and save it (HF format) in ``out_dir``.

    TransformerLens reloads tokenizers by ``name_or_path``, so the tokenizer must live
    in a folder; reload it with ``AutoTokenizer.from_pretrained(out_dir)``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_texts() + (extra_texts or []), trainer=trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    out = Path(out_dir)
    fast.save_pretrained(out)
    return out


def tiny_gemma2_config(
    d_vocab: int, d_model: int = 64, n_layers: int = 2, n_ctx: int = 128, seed: int = 0
) -> HookedTransformerConfig:
    """Gemma-2-2B's TransformerLens config fields, shrunk (window below the context)."""
    n_heads = 4
    return HookedTransformerConfig(
        d_model=d_model,
        d_head=d_model // n_heads,
        n_heads=n_heads,
        d_mlp=4 * d_model,
        n_layers=n_layers,
        n_ctx=n_ctx,
        eps=1e-6,
        d_vocab=d_vocab,
        act_fn="gelu_pytorch_tanh",
        initializer_range=0.02,
        normalization_type="RMS",
        rotary_base=10000,
        positional_embedding_type="rotary",
        use_attn_scale=True,
        n_key_value_heads=2,
        window_size=max(2, n_ctx // 4),
        use_local_attn=True,
        attn_types=["local", "global"] * ((n_layers + 1) // 2),
        attn_scores_soft_cap=50.0,
        output_logits_soft_cap=30.0,
        gated_mlp=True,
        final_rms=True,
        use_normalization_before_and_after=True,
        original_architecture="Gemma2ForCausalLM",
        default_prepend_bos=True,
        tokenizer_prepends_bos=True,
        seed=seed,
        device="cpu",
    )


def build_tiny_gemma2(
    tokenizer_dir: str | Path, seed: int = 0, **config_overrides: Any
) -> HookedTransformer:
    """A random-weight Gemma-2-shaped ``HookedTransformer`` using the saved tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    cfg = tiny_gemma2_config(d_vocab=len(tokenizer), seed=seed, **config_overrides)
    model = HookedTransformer(cfg, tokenizer=tokenizer, default_padding_side="right")
    model.eval()
    return model


def write_text_dataset(
    out_dir: str | Path, n_docs: int | None = None, repeats: int = 1
) -> Path:
    """Write ``out_dir/train.jsonl`` with a ``text`` column (loads with ``dataset_path=out_dir``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w") as f:
        for _ in range(repeats):
            for text in corpus_texts(n_docs):
                f.write(json.dumps({"text": text}) + "\n")
    return out


def iter_texts(n_docs: int | None = None) -> Iterator[dict[str, str]]:
    """The offline corpus as ``{"text": ...}`` rows (for streaming ``override_dataset``)."""
    for text in corpus_texts(n_docs):
        yield {"text": text}
