"""Export checkpoints the way SAEBench expects: a plain SAELens SAE, unit-norm decoder.

Every input (an exported inference folder, a SAELens runner output folder, a FreqSAE
or other training checkpoint, or an SAE object) goes through one path: load it as
SAELens's *training* class (a checkpoint's activation scaling folded in, as SAELens
folds it at the end of training), fold the decoder norms into the encoder
(``fold_W_dec_norm``: the SAE computes the same function with unit-norm ``W_dec``
rows; a no-op for FreqSAE's projected decoders, needed for
``unit_norm_decoder=False``), and save it with ``save_inference_model``, which
writes a FreqSAE as a plain ``standard`` SAE plus ``feature_freq.safetensors``.

The export lands in ``<out>/saes/<name>``, ``name`` being the folder's (or the SAE's)
name plus eight hex digits of the exported weights: SAEBench keys its results by
name, so two checkpoints never share one, and a retrained checkpoint in the same
folder gets a new one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.environment import safe_name
from sae_lens_freq.saes.export import load_with_scaling_folded

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"

Checkpoint = str | Path | SAE
"""A checkpoint folder or an in-memory SAE (``SAE`` or ``TrainingSAE``)."""


@dataclass
class ExportedSae:
    """One checkpoint, exported for SAEBench.

    Args:
        name: Unique run name: ``<stem>-<8 hex of the exported weights>``.
        sae: The exported SAE, loaded back from ``folder`` (inference class).
        folder: Where the export was written (``<out>/saes/<name>``).
        source: The checkpoint as given (a path string, or ``"<SAE object #i>"``).
    """

    name: str
    sae: SAE
    folder: Path
    source: str


def export_checkpoints(
    checkpoints: list[Checkpoint], saes_dir: Path, device: str = "cpu"
) -> list[ExportedSae]:
    """Export each checkpoint into ``saes_dir``; names are unique or ValueError."""
    if not checkpoints:
        raise ValueError("checkpoints must name at least one SAE, got an empty list")
    exported: list[ExportedSae] = []
    seen: dict[str, str] = {}
    for index, checkpoint in enumerate(checkpoints):
        item = export_checkpoint(checkpoint, saes_dir, index, device)
        if item.name in seen:
            raise ValueError(
                f"checkpoints[{index}]={item.source!r} is the same SAE as "
                f"{seen[item.name]!r} (both export as {item.name!r}); pass each once"
            )
        seen[item.name] = item.source
        exported.append(item)
    return exported


def export_checkpoint(
    checkpoint: Checkpoint, saes_dir: Path, index: int = 0, device: str = "cpu"
) -> ExportedSae:
    """Export one checkpoint (see module docstring) and load the export back."""
    staging = saes_dir / f".staging-{index}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if isinstance(checkpoint, SAE):
            source = f"<SAE object #{index}>"
            stem = checkpoint.get_name()
            # Saved as given, then loaded like any folder: one conversion path.
            copy.deepcopy(checkpoint).to("cpu").save_model(staging / "given")
            folder = staging / "given"
        elif isinstance(checkpoint, (str, Path)):
            source = str(checkpoint)
            folder = Path(checkpoint)
            stem = folder.resolve().name
            if (
                not (folder / CFG_FILE).is_file()
                or not (folder / WEIGHTS_FILE).is_file()
            ):
                raise ValueError(
                    f"checkpoints[{index}]={source!r} is not an SAE folder: it needs "
                    f"{CFG_FILE} and {WEIGHTS_FILE} (an exported SAE, a SAELens runner "
                    "output folder or a training checkpoint)"
                )
        else:
            raise ValueError(
                f"checkpoints[{index}] must be a folder path or a sae_lens SAE, got "
                f"{type(checkpoint).__name__}"
            )
        _write_unit_norm_export(folder, staging / "export", source)
        name = f"{safe_name(stem)}-{_weights_digest(staging / 'export')}"
        target = saes_dir / name
        shutil.rmtree(target, ignore_errors=True)
        (staging / "export").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sae = SAE.load_from_disk(target, device=device)
    _check_metadata(sae, source)
    return ExportedSae(name=name, sae=sae, folder=target, source=source)


def _write_unit_norm_export(folder: Path, out: Path, source: str) -> None:
    architecture = json.loads((folder / CFG_FILE).read_text()).get("architecture")
    try:
        # A checkpoint's activation scaling is folded in, as in a runner output.
        training = load_with_scaling_folded(folder)
    except (ValueError, KeyError):
        # Architectures SAELens can only run, not train: fold and save as they are.
        inference = SAE.load_from_disk(folder, device="cpu")
        _fold(inference, source, architecture)
        inference.save_model(out)
        return
    _fold(training, source, architecture)
    training.save_inference_model(out)


def _fold(sae: SAE, source: str, architecture: object) -> None:
    try:
        sae.fold_W_dec_norm()
    except NotImplementedError as err:
        raise ValueError(
            f"checkpoint {source!r} (architecture {architecture!r}) cannot fold its "
            "decoder norms, and SAEBench needs unit-norm decoders"
        ) from err


def _weights_digest(folder: Path) -> str:
    digest = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes())
    cfg = json.loads((folder / CFG_FILE).read_text())
    digest.update(repr(cfg.get("metadata", {}).get("hook_name")).encode())
    return digest.hexdigest()[:8]


def _check_metadata(sae: SAE, source: str) -> None:
    if not sae.cfg.metadata.hook_name:
        raise ValueError(
            f"checkpoint {source!r} has no metadata.hook_name in {CFG_FILE}: SAEBench "
            "needs the hook the SAE reads (e.g. 'blocks.12.hook_resid_post')"
        )
