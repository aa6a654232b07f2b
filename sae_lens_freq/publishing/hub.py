"""Publish trained SAEs to the HuggingFace Hub through SAELens's uploader.

``stage_repo`` writes the exact repository layout into a folder::

    README.md                     model card
    <sae_id>/cfg.json             plain `standard` SAE config
    <sae_id>/sae_weights.safetensors
    <sae_id>/sparsity.safetensors, runner_cfg.json     (when the run has them)
    <sae_id>/feature_freq.safetensors                   (FreqSAEs)
    <sae_id>/eval.json, saebench*.json, saebench/...    (when present)

A training checkpoint (or any FreqSAE saved with ``save_model``) is re-exported with
``save_inference_model`` after folding its activation scaling, so the Hub only ever
holds SAEs plain SAELens loads. ``publish`` stages into a temporary folder (or the
dry-run folder) and uploads it: ``sae_lens.upload_saes_to_huggingface`` uploads the
SAE folders, then one ``upload_folder`` commit adds the model card and the files
SAELens's uploader leaves out. Sources are only read, never modified. The token is
whatever huggingface_hub finds (``HF_TOKEN``, ``hf auth login``); this module never
reads its value.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sae_lens_freq.evaluation.metrics import EVAL_FILENAME, RunFolder, read_run
from sae_lens_freq.publishing.model_card import CardEntry, render_model_card
from sae_lens_freq.saes.freq_weighted_sae import ARCHITECTURE, FEATURE_FREQ_FILENAME

SAELENS_FILES = (
    "cfg.json",
    "sae_weights.safetensors",
    "sparsity.safetensors",
    "runner_cfg.json",
)
"""Files SAELens's ``upload_saes_to_huggingface`` uploads from each SAE folder."""

_SAE_ID = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


@dataclass(frozen=True)
class StagedSae:
    """One SAE laid out for the Hub.

    Args:
        sae_id: Its folder in the repository.
        folder: Its staged folder (``<staging root>/<sae_id>``).
        source: The run or checkpoint it came from.
        extra_files: Staged files beyond ``SAELENS_FILES``, relative to ``folder``.
    """

    sae_id: str
    folder: Path
    source: Path
    extra_files: tuple[str, ...]


def check_repo_id(repo_id: str) -> str:
    """``OWNER/NAME`` as the Hub accepts it, else ``ValueError``."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"repo={repo_id!r} is not a valid Hub repo id: {err}") from err
    if repo_id.count("/") != 1:
        raise ValueError(f"repo={repo_id!r} must be OWNER/NAME")
    return repo_id


def default_sae_ids(runs: Sequence[RunFolder]) -> list[str]:
    """The hook name for one SAE; ``<hook>__<architecture[-beta]>`` for several."""
    hooks = [str(r.metadata.get("hook_name") or "sae") for r in runs]
    if len(runs) == 1:
        return hooks
    return [f"{hook}__{run.slug}" for hook, run in zip(hooks, runs, strict=True)]


def stage_repo(
    sources: Sequence[str | Path],
    repo_id: str,
    out_dir: str | Path,
    sae_ids: Sequence[str] | None = None,
) -> list[StagedSae]:
    """Write the repository layout for ``sources`` into the empty (or new) ``out_dir``."""
    check_repo_id(repo_id)
    if not sources:
        raise ValueError("checkpoints must name at least one run or checkpoint")
    runs = [read_run(s) for s in sources]
    ids = list(sae_ids) if sae_ids else default_sae_ids(runs)
    _check_sae_ids(ids, len(runs))
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"dry_run_dir={str(out_dir)!r} must be empty or not exist")
    root.mkdir(parents=True, exist_ok=True)
    staged = [
        _stage_sae(run, root / sae_id, sae_id)
        for run, sae_id in zip(runs, ids, strict=True)
    ]
    entries = [_card_entry(run, s) for run, s in zip(runs, staged, strict=True)]
    (root / "README.md").write_text(render_model_card(repo_id, entries))
    return staged


def upload_staged(
    root: str | Path, staged: Sequence[StagedSae], repo_id: str, revision: str = "main"
) -> None:
    """Upload a staged layout: SAELens's uploader, then the card and extra files."""
    from huggingface_hub import HfApi
    from sae_lens import upload_saes_to_huggingface

    upload_saes_to_huggingface(
        {s.sae_id: s.folder for s in staged},
        hf_repo_id=repo_id,
        hf_revision=revision,
        add_default_readme=False,
    )
    extras = ["README.md"] + [f"{s.sae_id}/{f}" for s in staged for f in s.extra_files]
    HfApi().upload_folder(
        folder_path=str(root),
        repo_id=repo_id,
        revision=revision,
        repo_type="model",
        allow_patterns=extras,
        commit_message="Add model card and FreqSAE files (sae-lens-freq)",
    )


def publish(
    sources: Sequence[str | Path],
    repo_id: str,
    sae_ids: Sequence[str] | None = None,
    dry_run_dir: str | Path | None = None,
    revision: str = "main",
) -> list[StagedSae]:
    """Stage ``sources`` and upload them to ``repo_id`` (or only stage, for a dry run)."""
    import tempfile

    if dry_run_dir is not None:
        return stage_repo(sources, repo_id, dry_run_dir, sae_ids)
    from huggingface_hub import get_token

    if get_token() is None:  # compared, never shown
        raise ValueError(
            "no HuggingFace token found: set HF_TOKEN or run `hf auth login` "
            "(or pass a dry-run folder)"
        )
    with tempfile.TemporaryDirectory(prefix="sae-lens-freq-publish-") as tmp:
        staged = stage_repo(sources, repo_id, tmp, sae_ids)
        upload_staged(tmp, staged, repo_id, revision)
    return staged


def _check_sae_ids(ids: Sequence[str], n_runs: int) -> None:
    if len(ids) != n_runs:
        raise ValueError(
            f"sae_ids has {len(ids)} entries for {n_runs} checkpoints: give one "
            "--sae-id per CHECKPOINT, in order, or none"
        )
    for sae_id in ids:
        if not _SAE_ID.match(sae_id) or ".." in sae_id.split("/"):
            raise ValueError(
                f"sae_id={sae_id!r} must be a relative path of letters, digits, "
                "'_', '-', '.' and '/'"
            )
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"sae_ids={list(ids)!r} must be unique: pass --sae-id per checkpoint"
        )


def _stage_sae(run: RunFolder, dest: Path, sae_id: str) -> StagedSae:
    dest.mkdir(parents=True)
    if run.is_checkpoint or run.cfg.get("architecture") == ARCHITECTURE:
        _reexport(run, dest)
        copied = ("sparsity.safetensors", "runner_cfg.json")
    else:
        copied = (*SAELENS_FILES, FEATURE_FREQ_FILENAME)
    for name in copied:
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, dest / name)
    extras = [FEATURE_FREQ_FILENAME] if (dest / FEATURE_FREQ_FILENAME).is_file() else []
    for path in _result_files(run.path):
        rel = path.relative_to(run.path)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / rel)
        extras.append(rel.as_posix())
    architecture = json.loads((dest / "cfg.json").read_text())["architecture"]
    if architecture == ARCHITECTURE:  # would need the plugin to load
        raise ValueError(f"checkpoint={str(run.path)!r} did not export as a plain SAE")
    return StagedSae(sae_id, dest, run.path, tuple(extras))


def _reexport(run: RunFolder, dest: Path) -> None:
    """Load as a training SAE, fold activation scaling, save the inference form."""
    from sae_lens_freq.saes.export import load_with_scaling_folded

    load_with_scaling_folded(run.path).save_inference_model(dest)


def _result_files(folder: Path) -> list[Path]:
    found = [folder / EVAL_FILENAME] if (folder / EVAL_FILENAME).is_file() else []
    found += sorted(folder.glob("saebench*.json"))
    found += sorted(p for p in folder.glob("saebench/**/*.json") if p.is_file())
    return found


def _card_entry(run: RunFolder, staged: StagedSae) -> CardEntry:
    def load(name: str) -> dict[str, Any]:
        return json.loads((staged.folder / name).read_text())

    return CardEntry(
        sae_id=staged.sae_id,
        cfg=load("cfg.json"),
        training_architecture=run.architecture,
        hyperparameters=run.hyperparameters,
        training_tokens=run.training_tokens(),
        eval_result=load(EVAL_FILENAME)
        if EVAL_FILENAME in staged.extra_files
        else None,
        saebench={f: load(f) for f in staged.extra_files if f.startswith("saebench")},
        has_feature_freq=FEATURE_FREQ_FILENAME in staged.extra_files,
    )
