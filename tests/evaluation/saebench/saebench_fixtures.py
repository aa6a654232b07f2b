"""Offline stand-ins for what SAEBench's evals need (fixtures and helpers).

- A tokenizer whose vocabulary meets absorption's needs: the template
  ``"{word} has the first letter: X"`` tokenises word by word, answers ``" A"`` ..
  ``" Z"`` are single tokens, and every first letter has words in both of
  absorption's probe splits.
- A tiny Gemma-2-shaped model with a planted first-letter signal: every alphabetic
  token's embedding gets its first letter's direction (strength ``LETTER_STRENGTH``),
  so absorption's probe gate passes through a random network.
- SAEs at ``blocks.1.hook_resid_post`` whose first 26 latents read those directions.
- ``LabHC/bias_in_bios`` and ``canrager/amazon_reviews_mcauley_1and5`` stand-ins in
  their real column formats (parquet train/test splits).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from sae_bench.evals.absorption.vocab import LETTERS, get_alpha_tokens
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer

from sae_lens_freq.offline import build_tiny_gemma2, train_tokenizer

HOOK = "blocks.1.hook_resid_post"
D_MODEL = 64
D_SAE = 96
LETTER_STRENGTH = 8.0
MODEL_NAME = "tiny-letters"

WORDS_PER_LETTER = 12
"""Made-up words per first letter, each added as a whole-word token (both cases)."""


def made_up_words() -> list[str]:
    """``WORDS_PER_LETTER`` pronounceable words for each letter ("zobap", ...)."""
    rng = random.Random(0)
    words: list[str] = []
    for letter in LETTERS:
        made: set[str] = set()
        while len(made) < WORDS_PER_LETTER:
            syllables = (
                rng.choice("aeiou") + rng.choice("bcdfglmnprstvz") for _ in range(2)
            )
            made.add(letter + "".join(syllables))
        words += sorted(made)
    return words


# Tiny settings for each eval: the real SAEBench code paths, in seconds.
ABSORPTION: dict[str, Any] = {
    "llm_batch_size": 32,
    "max_k_value": 3,
    "k_sparse_probe_num_epochs": 5,
    "k_sparse_probe_batch_size": 512,
    "eval_k_sparse_probe_batch_size": 128,
    "precalc_k_sparse_probe_sae_acts": True,
}
BIAS_IN_BIOS = "LabHC/bias_in_bios"
AMAZON = "canrager/amazon_reviews_mcauley_1and5"
PROBE_DATASETS = [f"{BIAS_IN_BIOS}_class_set1", AMAZON]
SCR_TPP: dict[str, Any] = {
    "dataset_names": PROBE_DATASETS,
    "column1_vals_lookup": {
        PROBE_DATASETS[0]: [("professor", "nurse")],
        AMAZON: [("Books", "CDs_and_Vinyl")],
    },
    "train_set_size": 40,
    "test_set_size": 20,
    "context_length": 32,
    "probe_epochs": 10,
    "probe_lr": 1e-2,
    "n_values": [2, 5, 20],
    "sae_batch_size": 32,
    "llm_batch_size": 16,
}
SPARSE_PROBING: dict[str, Any] = {
    "dataset_names": PROBE_DATASETS,
    "probe_train_set_size": 40,
    "probe_test_set_size": 20,
    "context_length": 32,
    "k_values": [1, 2],
    "sae_batch_size": 32,
    "llm_batch_size": 16,
}


def core_settings(text_dir: Path) -> dict[str, Any]:
    return {
        "dataset": str(text_dir),
        "context_size": 32,
        "batch_size_prompts": 4,
        "n_eval_reconstruction_batches": 2,
        "n_eval_sparsity_variance_batches": 2,
    }


@pytest.fixture(scope="session")
def letters_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BPE on the offline corpus plus absorption prompts; the words as whole tokens.

    With many words per letter, every letter lands in both of absorption's random
    probe splits; the prompts make the template and answers single tokens.
    """
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    forms = [form for word in made_up_words() for form in (word, word.capitalize())]
    prompts = "\n".join(
        f"{form} has the first letter: {form[0].upper()}" for form in forms
    )
    folder = train_tokenizer(
        tmp_path_factory.mktemp("letters_tokenizer"),
        vocab_size=450,
        extra_texts=[prompts] * 60,
    )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.add_tokens([AddedToken(form, single_word=True) for form in forms])
    tokenizer.save_pretrained(folder)
    _check_absorption_vocabulary(folder)
    return folder


def _check_absorption_vocabulary(folder: Path) -> None:
    """Fail early, with the reason, if absorption could not use this vocabulary."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    words = sorted(get_alpha_tokens(tokenizer))
    lengths = {
        len(tokenizer(f"\n{w} has the first letter:")["input_ids"]) for w in words
    }
    assert len(lengths) == 1, f"prompts tokenise to different lengths {lengths}"
    answers = {len(tokenizer.tokenize(f" {letter.upper()}")) for letter in LETTERS}
    assert answers == {1}, "answers ' A' .. ' Z' must be single tokens"
    # Absorption's probe split: random.sample of the sorted words, seeded with 42.
    random.seed(42)
    shuffled = random.sample(words, len(words))
    split = int(len(shuffled) * 0.8)
    for part in (shuffled[:split], shuffled[split:]):
        assert {w.strip()[0].lower() for w in part} == set(LETTERS)


@pytest.fixture(scope="session")
def letter_directions() -> torch.Tensor:
    """One unit direction per first letter, ``(26, D_MODEL)``."""
    directions = torch.randn(26, D_MODEL, generator=torch.Generator().manual_seed(1))
    return directions / directions.norm(dim=1, keepdim=True)


@pytest.fixture(scope="session")
def letters_model(
    letters_tokenizer_dir: Path, letter_directions: torch.Tensor
) -> HookedTransformer:
    """The tiny Gemma-2 model with each alphabetic token carrying its first letter."""
    model = build_tiny_gemma2(letters_tokenizer_dir, seed=0, d_model=D_MODEL)
    model.cfg.model_name = MODEL_NAME
    tokenizer = model.tokenizer
    assert tokenizer is not None
    with torch.no_grad():
        for token, index in tokenizer.get_vocab().items():
            text = tokenizer.convert_tokens_to_string([token]).strip()
            if text.isascii() and text.isalpha():
                letter = LETTERS.index(text[0].lower())
                model.W_E[index] += LETTER_STRENGTH * letter_directions[letter]
    return model


def letters_sae(directions: torch.Tensor, seed: int = 0) -> StandardSAE:
    """A standard SAE whose first 26 latents read and write the letter directions."""
    torch.manual_seed(seed)
    cfg = StandardSAEConfig(
        d_in=D_MODEL,
        d_sae=D_SAE,
        metadata=SAEMetadata(hook_name=HOOK, model_name=MODEL_NAME, prepend_bos=True),
    )
    sae = StandardSAE(cfg)
    with torch.no_grad():
        sae.W_dec.data /= sae.W_dec.data.norm(dim=1, keepdim=True)
        sae.W_enc.data[:, :26] = directions.T
        sae.W_dec.data[:26] = directions
        sae.b_enc.data[:26] = -0.5 * LETTER_STRENGTH
    return sae


@pytest.fixture(scope="session")
def probe_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-ins for bias_in_bios and Amazon reviews under their hub paths (parquet)."""
    root = tmp_path_factory.mktemp("saebench_data")
    rng = random.Random(0)
    filler = [
        "works",
        "long",
        "hours",
        "and",
        "enjoys",
        "the",
        "quiet",
        "of",
        "the",
        "early",
        "morning",
    ]

    def bios(n: int) -> pd.DataFrame:
        rows = []
        for profession in (0, 1, 2, 6, 9, 13, 21):  # class set 1, nurse, professor
            for gender, pronoun in ((0, "He"), (1, "She")):
                for _ in range(n):
                    words = rng.sample(filler, 5)
                    text = f"{pronoun} is job {profession} and {' '.join(words)}"
                    rows.append(
                        {"hard_text": text, "profession": profession, "gender": gender}
                    )
        return pd.DataFrame(rows)

    def reviews(n: int) -> pd.DataFrame:
        rows = []
        for category in (1, 2, 3, 5, 6, 24, 26):  # TPP classes, Books, CDs_and_Vinyl
            for rating, mood in ((1.0, "awful"), (5.0, "great")):
                for _ in range(n):
                    words = rng.sample(filler, 5)
                    text = f"A {mood} item of kind {category}; {' '.join(words)}"
                    rows.append({"text": text, "category": category, "rating": rating})
        return pd.DataFrame(rows)

    for name, make in ((BIAS_IN_BIOS, bios), (AMAZON, reviews)):
        folder = root / name
        folder.mkdir(parents=True)
        make(24).to_parquet(folder / "train.parquet")
        make(12).to_parquet(folder / "test.parquet")
    return root


def freq_checkpoint(directions: torch.Tensor, path: Path, seed: int = 0) -> Path:
    """A FreqSAE training checkpoint (``save_model``) computing ``letters_sae``'s function
    with decoder rows of norms in [0.5, 2] (``unit_norm_decoder=False``)."""
    from sae_lens_freq import FreqWeightedTrainingSAE, FreqWeightedTrainingSAEConfig

    reference = letters_sae(directions, seed)
    cfg = FreqWeightedTrainingSAEConfig(
        d_in=D_MODEL,
        d_sae=D_SAE,
        unit_norm_decoder=False,
        metadata=SAEMetadata(hook_name=HOOK, model_name=MODEL_NAME, prepend_bos=True),
    )
    sae = FreqWeightedTrainingSAE(cfg)
    scale = 0.5 + 1.5 * torch.rand(D_SAE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        sae.W_enc.data = reference.W_enc.data / scale
        sae.b_enc.data = reference.b_enc.data / scale
        sae.W_dec.data = reference.W_dec.data * scale[:, None]
        sae.b_dec.data = reference.b_dec.data.clone()
        sae.feature_freq.copy_(torch.linspace(0.0, 0.2, D_SAE))
    sae.save_model(path)
    return path


@dataclass
class AbsorptionRun:
    """One offline absorption run through ``run_saebench`` (shared by several tests)."""

    root: Path
    checkpoint: Path
    out: Path
    cwd: Path
    results: dict[str, dict[str, dict[str, Any]]]
    site_files_before: set[Path]


def package_files(root: Path) -> set[Path]:
    """Every file under ``root`` except bytecode caches."""
    return {p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="session")
def absorption_run(
    letters_model: HookedTransformer,
    letter_directions: torch.Tensor,
    tmp_path_factory: pytest.TempPathFactory,
) -> AbsorptionRun:
    """SAEBench absorption on a FreqSAE checkpoint, run from an empty working directory."""
    import sae_bench

    from sae_lens_freq.evaluation.saebench import run_saebench

    root = tmp_path_factory.mktemp("absorption_run")
    checkpoint = freq_checkpoint(letter_directions, root / "freq_checkpoint")
    cwd = root / "cwd"
    cwd.mkdir()
    site_files_before = package_files(Path(sae_bench.__file__).parent)
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        results = run_saebench(
            [str(checkpoint)],
            "absorption",
            root / "out",
            model=letters_model,
            absorption=ABSORPTION,
        )
    finally:
        os.chdir(previous)
    return AbsorptionRun(
        root, checkpoint, root / "out", cwd, results, site_files_before
    )
