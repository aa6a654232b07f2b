"""SAELens's activation stream, with a state that a checkpoint can hold.

SAELens 6.54 saves only ``n_dataset_processed`` (documents read) and, on resume,
fast-forwards to the first sequence after it. Lost are: the activations waiting in
the mixing buffer (half the buffer by default, plus batches already shuffled out
but not yet trained on), the exact position inside the token stream (a long
document yields several context windows; the count of documents cannot tell which
one came next), and the RNG behind the buffer's ``randperm``. This module keeps all
three, while the data still flows through SAELens's own code:

- :class:`TokenStreamPosition` counts the context windows drawn from
  ``ActivationsStore.iterable_sequences`` since the current epoch began (training,
  evaluation and activation-norm estimation all draw from it) by wrapping the
  store's public ``get_batch_tokens`` on the instance. ``replay(n)`` re-reads
  ``n`` windows of a fresh store: tokenisation only, no LLM forward.
- :class:`ResumableActivationStream` is the trainer's data provider: SAELens's
  ``mixing_buffer`` over the store's ``get_filtered_llm_batch``, exactly what
  ``ActivationsStore.get_data_loader`` builds. ``state()`` reads the buffer's
  contents from the suspended generator (read-only; the local names of SAELens's
  ``mixing_buffer`` are checked, and a change raises ``ExactResumeUnavailable``);
  a stream built from that state yields the same batches as the original.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Generator, Iterator
from typing import Any

import torch
from sae_lens.training.activations_store import ActivationsStore
from sae_lens.training.mixing_buffer import mixing_buffer
from tqdm.auto import tqdm

_MIXER_LOCALS = ("storage_buffer", "serving_buffer", "batch_idx", "num_serving_batches")


class ExactResumeUnavailable(RuntimeError):
    """The activation stream's state cannot be captured (unsupported SAELens version)."""


class _Count:
    def __init__(self, value: int = 0):
        self.value = value


def _counting(
    sequences: Iterator[torch.Tensor], count: _Count
) -> Generator[torch.Tensor, None, None]:
    # A generator, as SAELens types ``iterable_sequences``; counts before yielding so
    # the count is current as soon as ``next()`` returns.
    for sequence in sequences:
        count.value += 1
        yield sequence


class TokenStreamPosition:
    """Counts context windows drawn from ``store.iterable_sequences`` this epoch.

    At an epoch end SAELens replaces ``iterable_sequences`` with a fresh generator
    inside ``get_batch_tokens``; the wrapper notices the swap and counts the
    windows the call took from the new one.
    """

    def __init__(self, store: ActivationsStore):
        self.store = store
        self._count = _Count()
        self._sequences = _counting(store.iterable_sequences, self._count)
        store.iterable_sequences = self._sequences
        original = store.get_batch_tokens

        def get_batch_tokens(*args: Any, **kwargs: Any) -> torch.Tensor:
            sequences, count = self._sequences, self._count
            before = count.value
            try:
                tokens = original(*args, **kwargs)
            except StopIteration:
                self._rewrap(0)
                raise
            if store.iterable_sequences is not sequences:
                self._rewrap(tokens.shape[0] - (count.value - before))
            return tokens

        store.get_batch_tokens = get_batch_tokens  # type: ignore[method-assign]

    @property
    def sequences_in_epoch(self) -> int:
        """Context windows drawn since the current pass over the dataset began."""
        return self._count.value

    def _rewrap(self, already_drawn: int) -> None:
        self._count = _Count(already_drawn)
        self._sequences = _counting(self.store.iterable_sequences, self._count)
        self.store.iterable_sequences = self._sequences

    def replay(self, sequences_in_epoch: int, n_dataset_processed: int) -> None:
        """Move a fresh store to a saved position (tokenises, runs no model)."""
        if self._count.value != 0:
            raise ValueError("replay needs a store that has not been read from yet")
        for _ in tqdm(
            range(sequences_in_epoch), desc="Restoring data position", leave=False
        ):
            next(self._sequences)
        self.store.n_dataset_processed = n_dataset_processed


class ResumableActivationStream(Iterator[torch.Tensor]):
    """Training batches from ``store``: SAELens's mixing buffer, checkpointable.

    Args:
        store: The runner's ``ActivationsStore`` (text or pre-tokenised dataset).
        pending: Batches to serve first, in order (from a saved state).
        leftover: Activations left in the mixing buffer (from a saved state); they
            are joined to the first new LLM batch, as the buffer itself does.
    """

    def __init__(
        self,
        store: ActivationsStore,
        pending: torch.Tensor | None = None,
        leftover: torch.Tensor | None = None,
    ):
        self.store = store
        self.batch_size = store.train_batch_size_tokens
        self._pending: list[torch.Tensor] = (
            [] if pending is None else list(pending.split(self.batch_size))
        )
        self._leftover = leftover
        self._mixer: Generator[torch.Tensor, None, None] = mixing_buffer(  # type: ignore[assignment]
            buffer_size=store.n_batches_in_buffer * store.training_context_size,
            batch_size=self.batch_size,
            activations_loader=self._llm_batches(),
            mix_fraction=store.activations_mixing_fraction,
        )

    def _llm_batches(self) -> Iterator[torch.Tensor]:
        # ActivationsStore._iterate_filtered_activations, through public methods.
        while True:
            try:
                batch = self.store.get_filtered_llm_batch(raise_on_epoch_end=True)
            except StopIteration:
                warnings.warn(
                    "All samples in the training dataset have been exhausted, "
                    "beginning new epoch.",
                    stacklevel=2,
                )
                batch = self.store.get_filtered_llm_batch()
            if self._leftover is not None:
                batch = torch.cat([self._leftover.to(batch.device), batch])
                self._leftover = None
            yield batch

    def __next__(self) -> torch.Tensor:
        if self._pending:
            return self._pending.pop(0)
        return next(self._mixer)

    def push_front(self, batch: torch.Tensor) -> None:
        """Give back a batch that was drawn but not trained on."""
        self._pending.insert(0, batch)

    def state(self) -> dict[str, torch.Tensor]:
        """``pending`` (batches to serve next, concatenated) and ``leftover``."""
        pending = list(self._pending)
        leftover = self._leftover
        if inspect.getgeneratorstate(self._mixer) == inspect.GEN_SUSPENDED:
            names = _mixer_locals(self._mixer)
            missing = [name for name in _MIXER_LOCALS if name not in names]
            if missing:
                raise ExactResumeUnavailable(
                    f"sae_lens.training.mixing_buffer has no locals {missing}: "
                    "this SAELens version is not supported for exact resume"
                )
            start = (names["batch_idx"] + 1) * self.batch_size
            stop = names["num_serving_batches"] * self.batch_size
            served_later = names["serving_buffer"][start:stop]
            pending += list(served_later.split(self.batch_size)) if stop > start else []
            leftover = names["storage_buffer"]
        empty = torch.empty(0, self.store.d_in, dtype=self.store.dtype)
        return {
            "pending": torch.cat(pending).cpu() if pending else empty,
            "leftover": leftover.cpu() if leftover is not None else empty,
        }


def stream_from_state(
    store: ActivationsStore, state: dict[str, torch.Tensor] | None
) -> ResumableActivationStream:
    """A stream that continues where ``state`` (from ``state()``) left off."""
    if state is None:
        return ResumableActivationStream(store)
    device = store.device
    pending, leftover = state["pending"].to(device), state["leftover"].to(device)
    return ResumableActivationStream(
        store,
        pending=pending if pending.shape[0] else None,
        leftover=leftover if leftover.shape[0] else None,
    )


def _mixer_locals(generator: Any) -> dict[str, Any]:
    # ``@torch.no_grad()`` wraps a generator function in a generator that drives
    # the real one, held in its local ``gen``; descend to the mixing buffer itself.
    for _ in range(4):
        frame = generator.gi_frame
        names = dict(frame.f_locals) if frame is not None else {}
        if "storage_buffer" in names or not inspect.isgenerator(names.get("gen")):
            return names
        generator = names["gen"]
    return {}
