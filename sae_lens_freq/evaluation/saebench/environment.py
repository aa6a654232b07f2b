"""The process state SAEBench's evals depend on, pinned and restored around each call.

SAEBench 0.6 reads and writes process-wide state: it loads its model by name through
``HookedTransformer.from_pretrained_no_processing``, writes caches into the working
directory, leaves autograd switched on, and draws from unseeded random generators.
Each context manager here pins one of those for the duration of a call and puts it
back afterwards.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformer_lens import HookedTransformer

_LOADER = "from_pretrained_no_processing"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (SAEBench uses all three)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def working_directory(path: str | Path) -> Iterator[Path]:
    """Run the body with ``path`` (created if missing) as the working directory."""
    folder = Path(path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)


@contextmanager
def restored_grad_mode() -> Iterator[None]:
    """Restore ``torch.is_grad_enabled()`` after the body (absorption switches it on)."""
    enabled = torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.set_grad_enabled(enabled)


@contextmanager
def serve_model(
    model: HookedTransformer | None, model_name: str
) -> Iterator[dict[str, int]]:
    """Answer SAEBench's model loads by name for the duration of the body.

    SAEBench's evals take no model argument: each calls
    ``HookedTransformer.from_pretrained_no_processing(name, ...)`` itself. Inside this
    context that loader returns ``model`` when asked for ``model_name`` (a local or
    fine-tuned model); any other name, or every name when ``model`` is None, goes to
    the real loader, once per (name, device, dtype, options): the evals of one run
    share a model instead of reloading it. The yielded dict counts real loads.
    """
    original = HookedTransformer.__dict__.get(_LOADER)
    real_loader: Callable[..., HookedTransformer] = getattr(HookedTransformer, _LOADER)
    loaded: dict[str, HookedTransformer] = {}
    counts = {"real_loads": 0}

    def load(
        cls: type[HookedTransformer], name: str, *args: Any, **kwargs: Any
    ) -> HookedTransformer:
        del cls
        if model is not None and name == model_name:
            device = kwargs.get("device")
            return model if device is None else model.to(device)
        key = repr((name, args, sorted(kwargs.items(), key=lambda kv: kv[0])))
        if key not in loaded:
            counts["real_loads"] += 1
            loaded[key] = real_loader(name, *args, **kwargs)
        return loaded[key]

    setattr(HookedTransformer, _LOADER, classmethod(load))
    try:
        yield counts
    finally:
        if original is not None:
            setattr(HookedTransformer, _LOADER, original)
        else:
            delattr(HookedTransformer, _LOADER)


@contextmanager
def jaxtyping_checks_disabled() -> Iterator[None]:
    """Switch off jaxtyping's runtime shape checks (read by each wrapper at call time).

    SAEBench's sparse-probing helpers are decorated ``@jaxtyped(typechecker=beartype)``
    with annotations their own return values violate under beartype 0.2x; this is the
    runtime equivalent of ``JAXTYPING_DISABLE=1``, scoped to one call.
    """
    from jaxtyping import config

    previous = config.jaxtyping_disable
    config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        config.update("jaxtyping_disable", previous)


@torch.no_grad()
def model_fingerprint(model: HookedTransformer) -> str:
    """Eight hex digits identifying a model's config and weights.

    Served models are evaluated under ``<name>@<fingerprint>``, so SAEBench's caches
    and result files, which it keys by model name, never mix a fine-tuned model with
    the hub model of the same name.
    """
    cfg = {
        k: v for k, v in model.cfg.to_dict().items() if k not in ("device", "n_devices")
    }
    digest = hashlib.sha256(repr(sorted(cfg.items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().double().flatten()
        stats = (name, tuple(tensor.shape), flat.sum().item(), flat.abs().sum().item())
        digest.update(repr(stats).encode())
    return digest.hexdigest()[:8]


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._@-]`` replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "-", text).strip("-") or "sae"
