"""Pre-tokenised datasets (SAELens's ``PretokenizeRunner`` output) in training.

Two obstacles in this dependency set, each fixed as narrowly as found:

1. ``datasets`` 3.x's torch formatter runs ``from torchvision.io import
   VideoReader`` on every value it formats, whenever torchvision is imported;
   torchvision 0.29 removed ``VideoReader``, so SAELens's
   ``dataset.set_format(type="torch")`` (map-style pre-tokenised data) fails with
   an ``ImportError``. :func:`ensure_datasets_torch_format` gives
   ``torchvision.io`` a placeholder ``VideoReader`` class, only when torchvision
   is installed and lacks one. Nothing can be an instance of the placeholder, so the
   formatter's ``isinstance`` check is False, as it should be: no value in a token
   dataset is a video. Newer torchvision versions with ``VideoReader`` are untouched.
2. For a dataset path *string* SAELens calls ``validate_pretokenized_dataset_
   tokenizer``, which asks the Hub for ``sae_lens.json`` even when the path is a
   local folder; offline (or for a path that is not a valid repo id) that raises.
   :func:`load_local_pretokenized` loads a local ``save_to_disk`` folder itself and
   the runner passes it to SAELens as a dataset object, after the same check run
   locally (:func:`validate_local_tokenizer`). Hub dataset names still go through
   SAELens's own loading and check.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METADATA_FILENAME = "sae_lens.json"
_SAVE_TO_DISK_MARKERS = ("state.json", "dataset_dict.json")


class _MissingVideoReader:
    """Stand-in for ``torchvision.io.VideoReader`` (removed in torchvision 0.29)."""

    def __init__(self, *_args: Any, **_kwargs: Any):
        raise ImportError(
            "torchvision.io.VideoReader is not available in this torchvision"
        )


def ensure_datasets_torch_format() -> bool:
    """Let ``datasets``' torch formatter run under torchvision >= 0.29; True if patched."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    import torchvision.io

    if hasattr(torchvision.io, "VideoReader"):
        return False
    torchvision.io.VideoReader = _MissingVideoReader  # type: ignore[attr-defined]
    return True


def is_local_pretokenized(path: str | Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` (``PretokenizeRunner``'s output)."""
    folder = Path(path)
    return folder.is_dir() and any(
        (folder / m).is_file() for m in _SAVE_TO_DISK_MARKERS
    )


def load_local_pretokenized(path: str | Path, streaming: bool = False) -> Any:
    """Load a ``save_to_disk`` folder as SAELens's store wants it.

    A ``DatasetDict`` gives its ``train`` split; ``streaming=True`` returns an
    ``IterableDataset`` view (no torch formatting needed then).
    """
    from datasets import DatasetDict, load_from_disk

    if not is_local_pretokenized(path):
        raise ValueError(
            f"dataset_path={str(path)!r} is not a folder written by save_to_disk "
            f"(expected one of {', '.join(_SAVE_TO_DISK_MARKERS)} inside)"
        )
    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if "train" not in dataset:
            raise ValueError(
                f"dataset_path={str(path)!r} has splits {sorted(dataset)}; a 'train' split is required"
            )
        dataset = dataset["train"]
    ensure_datasets_torch_format()
    return dataset.to_iterable_dataset() if streaming else dataset


def validate_local_tokenizer(path: str | Path, model_tokenizer: Any) -> None:
    """SAELens's pre-tokenised-dataset check, reading ``sae_lens.json`` from the folder.

    Raises ``ValueError`` when the tokenizer named there loads and its vocabulary
    differs from the model's. As in SAELens, a tokenizer that cannot be loaded (e.g.
    a Hub name while offline) skips the check, with a warning here.
    """
    metadata_path = Path(path) / METADATA_FILENAME
    if not metadata_path.is_file():
        logger.warning("%s has no %s: tokenizer not checked", path, METADATA_FILENAME)
        return
    tokenizer_name = json.loads(metadata_path.read_text())["tokenizer_name"]
    from transformers import AutoTokenizer

    try:
        dataset_tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
    except (OSError, ValueError) as err:
        logger.warning(
            "tokenizer %r not loadable (%s): not checked", tokenizer_name, err
        )
        return
    if dataset_tokenizer.get_vocab() != model_tokenizer.get_vocab():
        raise ValueError(
            f"dataset_path={str(path)!r} was tokenised with {tokenizer_name!r}, whose "
            "vocabulary differs from the model's tokenizer; pre-tokenise it with the "
            "model's tokenizer"
        )
