"""Shared offline fixtures: a tokenizer, a tiny Gemma-2-shaped model and text data.

Everything is built here, from the Python standard library's own documentation, so
the suite needs no network and no downloaded weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Deterministic and light on the 2-core CI machine; W&B never reaches the network.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)

from transformer_lens import HookedTransformer  # noqa: E402

import sae_lens_freq  # noqa: E402,F401  (registers freq_weighted)
from sae_lens_freq.models import save_hooked_transformer  # noqa: E402
from sae_lens_freq.offline import (  # noqa: E402
    build_tiny_gemma2,
    train_tokenizer,
    write_text_dataset,
)

TINY_HOOK = "blocks.1.hook_resid_post"
TINY_D_MODEL = 64


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_model(tokenizer_dir: Path) -> HookedTransformer:
    return build_tiny_gemma2(tokenizer_dir, seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(
    tiny_model: HookedTransformer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny model as a local model folder (``--model-path``)."""
    return save_hooked_transformer(tiny_model, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def text_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``train.jsonl`` (column ``text``), ~80 docs repeated 4 times."""
    return write_text_dataset(tmp_path_factory.mktemp("text"), repeats=4)
