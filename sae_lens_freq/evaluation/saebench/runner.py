"""``run_saebench``: export checkpoints, run SAEBench's own evals, collect and summarise.

Layout of ``out_dir``::

    saes/<name>/                      each checkpoint as SAEBench saw it (standard SAE)
    results/<eval>/<name>_custom_sae_eval_results.json   SAEBench's result files
    results/<eval>/<name>_custom_sae_not_enough_signal.json  explicit "no signal" records
    artifacts/<model>/<eval>/         SAEBench's caches (probes, activations)
    summary.json, summary.md          headline metrics across SAEs

A result is reused when its file exists and records the same eval config (model
name included); ``force=True`` reruns everything and clears the caches first.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sae_bench.sae_bench_utils.activation_collection import (
    LLM_NAME_TO_BATCH_SIZE,
    LLM_NAME_TO_DTYPE,
)
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_lens_freq.evaluation.saebench import absorption, core, scr_tpp, sparse_probing
from sae_lens_freq.evaluation.saebench.environment import (
    model_fingerprint,
    safe_name,
    seed_everything,
    serve_model,
)
from sae_lens_freq.evaluation.saebench.export import (
    Checkpoint,
    ExportedSae,
    export_checkpoints,
)
from sae_lens_freq.evaluation.saebench.job import (
    EvalAdapter,
    EvalJob,
    SaeBenchError,
    load_record,
    load_validated,
    reusable,
)
from sae_lens_freq.evaluation.saebench.summary import write_summary

ADAPTERS: dict[str, EvalAdapter] = {
    "absorption": absorption.ADAPTER,
    "scr": scr_tpp.SCR_ADAPTER,
    "tpp": scr_tpp.TPP_ADAPTER,
    "core": core.ADAPTER,
    "sparse_probing": sparse_probing.ADAPTER,
}
EVALS = tuple(ADAPTERS)
"""Evals this wrapper runs, in the order it runs them."""

DEFAULT_LLM_BATCH_SIZE = 16
"""Prompts per forward pass for models SAEBench has no batch size for."""

Results = dict[str, dict[str, dict[str, Any]]]
"""SAE name -> eval -> SAEBench's ``eval_result_metrics`` (or a not-enough-signal record)."""


def run_saebench(
    checkpoints: Checkpoint | Sequence[Checkpoint],
    evals: str | Sequence[str],
    out_dir: str | Path,
    model: HookedTransformer | None = None,
    model_name: str | None = None,
    *,
    device: str | None = None,
    force: bool = False,
    data_dir: str | Path | None = None,
    **eval_overrides: dict[str, Any],
) -> Results:
    """Run SAEBench evals on checkpoints; write and return the results.

    Args:
        checkpoints: SAE folders (exported, runner output or training checkpoint) or
            SAE objects; each is exported to ``out_dir/saes`` as a standard SAE with
            unit-norm decoder rows.
        evals: Names from ``EVALS`` (a list, or one comma-separated string).
        out_dir: Folder for everything the run writes (see module docstring).
        model: A ``HookedTransformer`` to evaluate with (local or fine-tuned). It is
            served to SAEBench under ``<model_name>@<fingerprint>``.
        model_name: Without ``model``: the hub name SAEBench loads (default: the
            SAEs' ``metadata.model_name``). With it: the model's name (default
            ``model.cfg.model_name``).
        device: Torch device (default: ``cuda`` if available, else ``cpu``).
        force: Rerun even where a matching result exists; clear caches first.
        data_dir: Folder holding local copies of SAEBench's datasets under their hub
            paths (e.g. ``LabHC/bias_in_bios``); default: the working directory.
        **eval_overrides: Per eval, fields of SAEBench's config to change, e.g.
            ``absorption={"llm_batch_size": 4}``, ``core={"dataset": "my/text"}``.

    Returns:
        SAE name -> eval -> SAEBench's ``eval_result_metrics``, or, where an eval found
        too little signal, a record with ``status == "not_enough_signal"``.
    """
    eval_names = _check_evals(evals)
    _check_overrides(eval_overrides)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = _check_data_dir(data_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    items = (
        list(checkpoints)
        if isinstance(checkpoints, Sequence) and not isinstance(checkpoints, str)
        else [checkpoints]
    )
    exported = export_checkpoints(items, out / "saes", device=device)
    if model is None:
        model, model_name = _local_model(exported, model_name, device)
    eval_model, dtype, batch_size = _model_settings(exported, model, model_name)
    for item in exported:
        item.sae.cfg.metadata.model_name = eval_model
        if item.sae.cfg.metadata.prepend_bos is None:
            item.sae.cfg.metadata.prepend_bos = True
    jobs = []
    for name in eval_names:
        job = EvalJob(
            eval_name=name,
            model_name=eval_model,
            device=device,
            llm_dtype=dtype,
            llm_batch_size=batch_size,
            results_dir=out / "results",
            artifacts_dir=out / "artifacts" / safe_name(eval_model) / name,
            data_dir=data,
            overrides=dict(eval_overrides.get(name, {})),
        )
        jobs.append((job, ADAPTERS[name].make_config(job)))  # all configs checked first
    results: Results = {item.name: {} for item in exported}
    with (
        serve_model(model, eval_model),
        tqdm(total=len(jobs) * len(exported), desc="SAEBench evals") as progress,
    ):
        for job, config in jobs:
            if force:
                shutil.rmtree(job.artifacts_dir, ignore_errors=True)
            for item in exported:
                progress.set_postfix_str(f"{job.eval_name}: {item.name}")
                results[item.name][job.eval_name] = _run_or_reuse(
                    job, config, item, force
                )
                progress.update(1)
    write_summary(out, results, eval_names)
    return results


def _run_or_reuse(
    job: EvalJob, config: Any, item: ExportedSae, force: bool
) -> dict[str, Any]:
    adapter = ADAPTERS[job.eval_name]
    result, record = job.result_path(item.name), job.record_path(item.name)
    wanted = adapter.requested(config)
    if not force and reusable(result, wanted):
        return load_validated(result, adapter.output_class)["eval_result_metrics"]
    if not force and reusable(record, wanted):
        return load_record(record)
    result.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    job.eval_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(adapter.seed_of(config))
    adapter.run_one(job, config, item.name, item.sae)
    if result.is_file():
        return load_validated(result, adapter.output_class)["eval_result_metrics"]
    if record.is_file():
        return load_record(record)
    raise SaeBenchError(
        f"{job.eval_name} wrote no result for {item.name!r} into {job.eval_dir}"
    )


def _check_evals(evals: str | Sequence[str]) -> list[str]:
    names = (
        [e.strip() for e in evals.split(",")] if isinstance(evals, str) else list(evals)
    )
    bad = [n for n in names if n not in ADAPTERS]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(
            f"evals must be distinct names from {', '.join(EVALS)}, got {evals!r}"
        )
    return names


def _check_overrides(overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if key not in ADAPTERS:
            raise ValueError(
                f"unknown keyword {key}={value!r}: eval overrides are keyed by eval "
                f"name ({', '.join(EVALS)})"
            )
        if not isinstance(value, dict):
            raise ValueError(
                f"{key} overrides must be a dict of settings, got {value!r}"
            )
        if "model_name" in value:
            raise ValueError(
                f"{key}.model_name={value['model_name']!r} cannot be set per eval; pass "
                "model_name= (or --model)"
            )


def _check_data_dir(data_dir: str | Path | None) -> Path | None:
    if data_dir is None:
        return None
    folder = Path(data_dir).resolve()
    if not folder.is_dir():
        raise ValueError(f"data_dir={str(data_dir)!r} is not a folder")
    return folder


def _local_model(
    exported: list[ExportedSae], model_name: str | None, device: str
) -> tuple[HookedTransformer | None, str | None]:
    """A local model folder named by ``model_name`` or by the SAEs' shared
    ``metadata.model_name`` (``sae-lens-freq train --model-path`` records it), loaded."""
    from sae_lens_freq.models import is_local_model_folder, load_hooked_transformer

    names = {item.sae.cfg.metadata.model_name for item in exported}
    name = model_name or (str(next(iter(names))) if len(names) == 1 else None)
    if not is_local_model_folder(name):
        return None, model_name
    assert name is not None
    model = load_hooked_transformer(name, device=device)
    return model, Path(name).name


def _model_settings(
    exported: list[ExportedSae], model: HookedTransformer | None, model_name: str | None
) -> tuple[str, str, int]:
    """(name SAEBench loads the model by, its dtype, its batch size)."""
    if model is not None:
        for item in exported:
            hook = item.sae.cfg.metadata.hook_name
            if hook not in model.hook_dict:
                raise ValueError(
                    f"checkpoint {item.source!r} reads hook_name={hook!r}, which the "
                    f"given model ({model.cfg.n_layers} layers) does not have"
                )
        base = model_name or model.cfg.model_name
        dtype = str(model.cfg.dtype).removeprefix("torch.")
        return f"{base}@{model_fingerprint(model)}", dtype, DEFAULT_LLM_BATCH_SIZE
    names = {item.sae.cfg.metadata.model_name for item in exported}
    if model_name is None:
        if len(names) != 1 or not next(iter(names)):
            raise ValueError(
                f"model_name is needed: the checkpoints' metadata.model_name are "
                f"{sorted(map(str, names))}; pass --model NAME or --model-path DIR"
            )
        model_name = str(next(iter(names)))
    dtype = LLM_NAME_TO_DTYPE.get(model_name, "float32")
    return (
        model_name,
        dtype,
        LLM_NAME_TO_BATCH_SIZE.get(model_name, DEFAULT_LLM_BATCH_SIZE),
    )
