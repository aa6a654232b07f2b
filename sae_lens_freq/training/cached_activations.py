"""Train from activations cached on disk, for as many epochs as wanted.

A long run repeats the LLM forward pass for every token; caching the activations
once with SAELens's ``CacheActivationsRunner`` and training from the cache (SAELens's
``use_cached_activations``) pays for it once::

    cache_activations(cfg, "acts/", n_tokens=20_000_000, model=model)
    cached = cached_training_config(cfg, "acts/", epochs=3)
    FreqSAETrainingRunner(cached, override_model=model).run()

The run's outputs (export, checkpoints, ``metrics.jsonl``, W&B) are those of any
run. SAELens's cached store reads ``store_batch_size_prompts`` cached sequences at a
time, in order, and starts again at row 0 when the cache is exhausted, so
``epochs`` is simply ``training_tokens / cached tokens``; its mixing buffer then
shuffles as usual.

Equality with a live run: with ``shuffle=False`` the cache holds the live store's
sequences in the live order, computed by the same forward pass when
``model_batch_size == store_batch_size_prompts`` (the default here), so a run with
``activations_mixing_fraction=0`` (no shuffling, which would draw different random
numbers) trains on bit-identical batches and gives the same SAE.
Resuming a cached run restarts the epoch at its first row: SAELens saves no cache
position.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any
from unittest import mock

from sae_lens import LanguageModelSAERunnerConfig
from sae_lens.config import CacheActivationsRunnerConfig
from transformer_lens.HookedTransformer import HookedRootModule


def cache_config(
    cfg: LanguageModelSAERunnerConfig[Any],
    cache_path: str | Path,
    n_tokens: int,
    shuffle: bool = True,
    buffer_size_gb: float = 2.0,
) -> CacheActivationsRunnerConfig:
    """SAELens's cache config for the model, hook, data and context of ``cfg``.

    Args:
        cfg: The training config the cache is for.
        cache_path: Empty or missing folder the cache is written to.
        n_tokens: Tokens to cache (>= ``cfg.context_size``); SAELens rounds up to
            whole buffers.
        shuffle: Shuffle the cached sequences (SAELens's default). ``False`` keeps
            the live order.
        buffer_size_gb: Size of each on-disk shard, in (0, 2].
    """
    if (
        isinstance(n_tokens, bool)
        or not isinstance(n_tokens, int)
        or n_tokens < cfg.context_size
    ):
        raise ValueError(
            f"n_tokens must be an integer >= context_size ({cfg.context_size}), got {n_tokens!r}"
        )
    if not 0 < buffer_size_gb <= 2:
        raise ValueError(f"buffer_size_gb must be in (0, 2], got {buffer_size_gb!r}")
    return CacheActivationsRunnerConfig(
        dataset_path=cfg.dataset_path,
        model_name=cfg.model_name,
        model_class_name=cfg.model_class_name,
        model_batch_size=cfg.store_batch_size_prompts,
        hook_name=cfg.hook_name,
        d_in=cfg.sae.d_in,
        training_tokens=n_tokens,
        context_size=cfg.context_size,
        new_cached_activations_path=str(cache_path),
        shuffle=shuffle,
        seed=cfg.seed,
        dtype=cfg.dtype,
        device=str(cfg.llm_device or cfg.device),
        buffer_size_gb=buffer_size_gb,
        model_kwargs=dict(cfg.model_kwargs),
        model_from_pretrained_kwargs=dict(cfg.model_from_pretrained_kwargs or {}),
        prepend_bos=cfg.prepend_bos,
        seqpos_slice=cfg.seqpos_slice,
        streaming=cfg.streaming,
        autocast_lm=cfg.autocast_lm,
        dataset_trust_remote_code=cfg.dataset_trust_remote_code,
        use_chat_formatting=cfg.use_chat_formatting,
    )


def cache_activations(
    cfg: LanguageModelSAERunnerConfig[Any],
    cache_path: str | Path,
    n_tokens: int,
    model: HookedRootModule | None = None,
    override_dataset: Any = None,
    shuffle: bool = True,
    buffer_size_gb: float = 2.0,
) -> Path:
    """Cache ``n_tokens`` activations of ``cfg``'s hook with SAELens's cache runner.

    ``model`` is a loaded model to use instead of ``cfg.model_name`` (SAELens's cache
    runner only loads by name; it is handed the object in place of its loader).
    Returns ``cache_path``.
    """
    from sae_lens import cache_activations_runner

    cache_cfg = cache_config(cfg, cache_path, n_tokens, shuffle, buffer_size_gb)
    if model is None:
        runner = cache_activations_runner.CacheActivationsRunner(
            cache_cfg, override_dataset
        )
    else:
        with mock.patch.object(
            cache_activations_runner, "load_model", lambda **_: model
        ):
            runner = cache_activations_runner.CacheActivationsRunner(
                cache_cfg, override_dataset
            )
    runner.run()
    return Path(cache_path)


def cached_tokens(
    cache_path: str | Path, cfg: LanguageModelSAERunnerConfig[Any]
) -> int:
    """Tokens in the cache at ``cache_path``, after checking it fits ``cfg``."""
    import datasets

    folder = Path(cache_path)
    if not (folder / "state.json").is_file():
        raise ValueError(
            f"cache_path={str(cache_path)!r} is not an activation cache (no state.json; "
            "write one with cache_activations)"
        )
    cache = datasets.load_from_disk(str(folder))
    assert isinstance(cache, datasets.Dataset)
    context = len(range(cfg.context_size)[slice(*cfg.seqpos_slice)])
    if cfg.hook_name not in cache.column_names:
        raise ValueError(
            f"hook_name={cfg.hook_name!r} is not cached in {folder}; cached: "
            f"{[c for c in cache.column_names if c != 'token_ids']}"
        )
    shape = tuple(cache.features[cfg.hook_name].shape)
    if shape != (context, cfg.sae.d_in):
        raise ValueError(
            f"cache rows have shape {shape}, but context_size={context} and "
            f"d_in={cfg.sae.d_in} need ({context}, {cfg.sae.d_in})"
        )
    return len(cache) * context


def cached_training_config(
    cfg: LanguageModelSAERunnerConfig[Any], cache_path: str | Path, epochs: float = 1.0
) -> LanguageModelSAERunnerConfig[Any]:
    """A copy of ``cfg`` that trains from the cache for ``epochs`` passes over it.

    ``training_tokens`` becomes ``epochs`` times the cached tokens, rounded down to
    whole training batches.
    """
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, (int, float))
        or not (math.isfinite(epochs) and epochs > 0)
    ):
        raise ValueError(f"epochs must be a finite number > 0, got {epochs!r}")
    n_cached = cached_tokens(cache_path, cfg)
    batch = cfg.train_batch_size_tokens
    tokens = int(epochs * n_cached) // batch * batch
    if tokens == 0:
        raise ValueError(
            f"epochs={epochs} of {n_cached} cached tokens is less than one batch of "
            f"train_batch_size_tokens={batch}"
        )
    out = copy.copy(cfg)
    out.use_cached_activations = True
    out.cached_activations_path = str(cache_path)
    out.training_tokens = tokens
    return out
