"""``run_saebench`` runs SAEBench's own evals offline, with every file under ``out_dir``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sae_bench
import torch
from pydantic import TypeAdapter
from sae_bench.evals.absorption.eval_output import AbsorptionEvalOutput
from sae_bench.evals.core.eval_output import CoreEvalOutput
from sae_bench.evals.scr_and_tpp.eval_output import ScrEvalOutput, TppEvalOutput
from sae_bench.evals.sparse_probing.eval_output import SparseProbingEvalOutput
from saebench_fixtures import (
    ABSORPTION,
    MODEL_NAME,
    SCR_TPP,
    SPARSE_PROBING,
    AbsorptionRun,
    core_settings,
    freq_checkpoint,
    letters_sae,
    package_files,
)
from transformer_lens import HookedTransformer

from sae_lens_freq.evaluation.saebench import SaeBenchError, run_saebench

OUTPUT_CLASSES = {
    "absorption": AbsorptionEvalOutput,
    "scr": ScrEvalOutput,
    "tpp": TppEvalOutput,
    "core": CoreEvalOutput,
    "sparse_probing": SparseProbingEvalOutput,
}


def _result_file(out: Path, eval_name: str, sae_name: str) -> dict:
    path = out / "results" / eval_name / f"{sae_name}_custom_sae_eval_results.json"
    data = json.loads(path.read_text())
    TypeAdapter(OUTPUT_CLASSES[eval_name]).validate_python(data)
    return data


def test_absorption_runs_offline_with_every_file_under_out(
    absorption_run: AbsorptionRun,
) -> None:
    [(name, per_eval)] = absorption_run.results.items()
    assert name.startswith("freq_checkpoint-")
    data = _result_file(absorption_run.out, "absorption", name)
    assert data["eval_result_metrics"] == per_eval["absorption"]
    mean = per_eval["absorption"]["mean"]
    assert 0.0 <= mean["mean_absorption_fraction_score"] <= 1.0
    assert data["eval_config"]["model_name"].startswith(f"{MODEL_NAME}@")
    assert data["sae_cfg_dict"]["architecture"] == "standard"
    assert list(absorption_run.cwd.iterdir()) == []
    site = package_files(Path(sae_bench.__file__).parent)
    assert site == absorption_run.site_files_before
    summary = (absorption_run.out / "summary.md").read_text()
    assert name in summary and "| absorption |" in summary


def test_too_few_letters_give_an_explicit_record(
    absorption_run: AbsorptionRun, letters_model: HookedTransformer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(absorption_run.out, out)  # reuses the trained letter probes
    [name] = absorption_run.results
    # 26 letters exist; SAEBench returns {} when fewer than min_feats_for_eval pass.
    results = run_saebench(
        [str(absorption_run.checkpoint)],
        ["absorption"],
        out,
        model=letters_model,
        absorption={**ABSORPTION, "min_feats_for_eval": 27},
    )
    record = results[name]["absorption"]
    assert record["status"] == "not_enough_signal"
    assert len(record["probe_f1_by_letter"]) == 26
    assert "min_feats_for_eval=27" in record["reason"]
    assert not (
        out / "results" / "absorption" / f"{name}_custom_sae_eval_results.json"
    ).exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"][name]["absorption"] == "not_enough_signal"


def test_probe_evals_and_core_run_offline_and_are_reused(
    letters_model: HookedTransformer,
    letter_directions: torch.Tensor,
    probe_data_dir: Path,
    text_dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SAEBench finds LabHC/bias_in_bios etc. as local folders of the working directory.
    monkeypatch.chdir(probe_data_dir)
    data_files = package_files(probe_data_dir)
    checkpoints = [
        str(freq_checkpoint(letter_directions, tmp_path / "freq")),
        letters_sae(letter_directions, seed=3),
    ]
    evals = ["scr", "tpp", "core", "sparse_probing"]
    settings: dict[str, Any] = {
        "scr": SCR_TPP,
        "tpp": SCR_TPP,
        "core": core_settings(text_dataset_dir),
        "sparse_probing": SPARSE_PROBING,
    }
    out = tmp_path / "out"
    results = run_saebench(checkpoints, evals, out, model=letters_model, **settings)

    assert len(results) == 2
    for name, per_eval in results.items():
        assert set(per_eval) == set(evals)
        for eval_name in evals:
            data = _result_file(out, eval_name, name)
            assert data["eval_result_metrics"] == per_eval[eval_name]
        assert per_eval["core"]["sparsity"]["l0"] > 0
        assert per_eval["scr"]["scr_metrics"]["scr_metric_threshold_20"] is not None
    assert package_files(probe_data_dir) == data_files
    summary = json.loads((out / "summary.json").read_text())
    labels = [column["label"] for column in summary["columns"]]
    assert {"SCR@20", "TPP@20", "L0", "top-1 probe acc."} <= set(labels)

    files = sorted((out / "results").rglob("*.json"))
    stamps = [path.stat().st_mtime_ns for path in files]
    again = run_saebench(checkpoints, evals, out, model=letters_model, **settings)
    assert again == results
    assert [path.stat().st_mtime_ns for path in files] == stamps

    # --force reruns (same numbers: seeded), datasets found through data_dir instead.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rerun = run_saebench(
        checkpoints[:1], ["scr"], out, model=letters_model, force=True,
        data_dir=probe_data_dir, scr=SCR_TPP,
    )  # fmt: skip
    [first] = rerun
    assert rerun[first]["scr"] == results[first]["scr"]
    scr_file = out / "results" / "scr" / f"{first}_custom_sae_eval_results.json"
    assert scr_file.stat().st_mtime_ns > stamps[files.index(scr_file)]
    assert list(elsewhere.iterdir()) == []


def test_core_errors_are_raised_not_swallowed(
    letters_model: HookedTransformer,
    letter_directions: torch.Tensor,
    text_dataset_dir: Path,
    tmp_path: Path,
) -> None:
    broken = {
        **core_settings(text_dataset_dir),
        "n_eval_reconstruction_batches": 0,
        "n_eval_sparsity_variance_batches": 0,
    }
    with pytest.raises(SaeBenchError, match="core produced no result") as info:
        run_saebench(
            [letters_sae(letter_directions)],
            "core",
            tmp_path,
            model=letters_model,
            core=broken,
        )
    assert isinstance(info.value.__cause__, AssertionError)


def test_bad_arguments_are_rejected_early(
    letters_model: HookedTransformer, letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    sae = letters_sae(letter_directions)
    with pytest.raises(ValueError, match=r"evals must be .* got 'absorption,bogus'"):
        run_saebench([sae], "absorption,bogus", tmp_path)
    with pytest.raises(ValueError, match="keyed by eval name"):
        run_saebench([sae], "core", tmp_path, cores={"dataset": "x"})
    with pytest.raises(ValueError, match="absorption has no setting 'llm_batchsize'"):
        run_saebench(
            [sae],
            "absorption",
            tmp_path,
            model=letters_model,
            absorption={"llm_batchsize": 4},
        )
    with pytest.raises(ValueError, match=r"scr.train_set_size='many' is invalid"):
        run_saebench(
            [sae], "scr", tmp_path, model=letters_model, scr={"train_set_size": "many"}
        )
    with pytest.raises(
        ValueError, match=r"core\.compute_featurewise_density_statistics"
    ):
        run_saebench(
            [sae],
            "core",
            tmp_path,
            model=letters_model,
            core={"compute_featurewise_density_statistics": False},
        )
    other = letters_sae(letter_directions, seed=1)
    other.cfg.metadata.model_name = "another-model"
    with pytest.raises(ValueError, match="model_name is needed"):
        run_saebench([sae, other], "core", tmp_path)
    other.cfg.metadata.hook_name = "blocks.7.hook_resid_post"
    with pytest.raises(ValueError, match=r"blocks\.7\.hook_resid_post"):
        run_saebench([other], "core", tmp_path, model=letters_model)


def test_a_local_model_folder_named_by_the_sae_is_found_without_being_told(
    tiny_model_dir: Path, text_dataset_dir: Path, tmp_path: Path
) -> None:
    """``train --model-path`` records the folder as ``model_name``; SAEBench runs on it."""
    from sae_lens_freq import FreqWeightedTrainingSAE, FreqWeightedTrainingSAEConfig

    torch.manual_seed(0)
    sae = FreqWeightedTrainingSAE(FreqWeightedTrainingSAEConfig(d_in=64, d_sae=96))
    sae.cfg.metadata.model_name = str(tiny_model_dir.resolve())
    sae.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    sae.cfg.metadata.prepend_bos = True
    sae.save_inference_model(tmp_path / "run")

    out = tmp_path / "out"
    results = run_saebench(
        [str(tmp_path / "run")], "core", out, core=core_settings(text_dataset_dir)
    )
    ((name, by_eval),) = results.items()
    assert by_eval["core"]["sparsity"]["l0"] > 0
    data = _result_file(out, "core", name)
    # served under the folder's name plus the model's fingerprint
    assert data["eval_config"]["model_name"].startswith(f"{tiny_model_dir.name}@")
