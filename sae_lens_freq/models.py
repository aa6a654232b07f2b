"""Local TransformerLens model folders: save and load a ``HookedTransformer`` by path.

TransformerLens's ``from_pretrained`` accepts only official hub names, so a model
built or fine-tuned locally (or the offline test model) is kept as a folder::

    DIR/config.json          HookedTransformerConfig fields
    DIR/model.safetensors    state dict
    DIR/tokenizer/           a HuggingFace tokenizer (save_pretrained)

``load_hooked_transformer(DIR)`` rebuilds it; the ``train``, ``eval`` and
``saebench`` commands take such a folder through ``--model-path``. ``train`` records
the folder's absolute path as the run's ``model_name``, so ``eval`` and ``saebench``
find the model again without being told (``is_local_model_folder``).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"


def save_hooked_transformer(model: HookedTransformer, path: str | Path) -> Path:
    """Write ``model`` as a local model folder (see module docstring)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {f.name: getattr(model.cfg, f.name) for f in fields(model.cfg)}
    cfg = {k: v for k, v in cfg.items() if _jsonable(v)}
    cfg["dtype"] = str(model.cfg.dtype).removeprefix("torch.")
    (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=1))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, out / WEIGHTS_FILE)
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(out / TOKENIZER_DIR)
    return out


def is_local_model_folder(name: str | Path | None) -> bool:
    """Whether ``name`` (e.g. a run's ``model_name``) is a local model folder."""
    if not name:
        return False
    folder = Path(name)
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def load_hooked_transformer(path: str | Path, device: str = "cpu") -> HookedTransformer:
    """Rebuild a ``HookedTransformer`` from a folder written by ``save_hooked_transformer``."""
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(
            f"model_path={str(path)!r} is not a local model folder: it needs "
            f"{CONFIG_FILE} and {WEIGHTS_FILE} (written by save_hooked_transformer)"
        )
    from transformers import AutoTokenizer

    raw = json.loads((folder / CONFIG_FILE).read_text())
    known = {f.name for f in fields(HookedTransformerConfig)}
    raw = {k: v for k, v in raw.items() if k in known}
    raw["dtype"] = getattr(torch, raw.get("dtype", "float32"))
    raw["device"] = device
    tokenizer = None
    if (folder / TOKENIZER_DIR).is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
    cfg = HookedTransformerConfig(**raw)
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    model.load_state_dict(load_file(folder / WEIGHTS_FILE, device=device))
    return model.to(device)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
