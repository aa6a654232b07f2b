"""SAEBench's feature-absorption (first-letter) eval, run reproducibly under ``--out``.

What this adapter fixes in ``sae_bench.evals.absorption.main.run_eval`` (0.6):

- Caches: its probe, k-sparse-probing and absorption experiments default to folders
  inside site-packages (default arguments of ``run_k_sparse_probing_experiment`` and
  ``run_feature_absortion_experiment``), and it writes ``./artifacts/absorption``. The
  two experiment functions get explicit folders under the job's artifacts, and the
  call runs with the artifacts folder as working directory.
- Reproducibility: ``random_seed`` is never used and the word list follows
  ``tokenizer.vocab``'s per-process order. The caller seeds every generator; here
  the word list is sorted.
- Too little signal: when fewer than ``min_feats_for_eval`` letters pass the probe
  gate it prints a line and returns ``{}``. Here that becomes an explicit
  "not enough signal" record with each letter's probe F1.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sae_bench.evals.absorption.common as absorption_common
import sae_bench.evals.absorption.feature_absorption as feature_absorption
import sae_bench.evals.absorption.main as absorption_main
from sae_bench.evals.absorption.eval_config import AbsorptionEvalConfig
from sae_bench.evals.absorption.eval_output import AbsorptionEvalOutput
from sae_bench.evals.absorption.vocab import get_alpha_tokens
from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.environment import (
    restored_grad_mode,
    working_directory,
)
from sae_lens_freq.evaluation.saebench.job import (
    EvalAdapter,
    EvalJob,
    SaeBenchError,
    build_config,
    config_dict,
    write_record,
)


def make_config(job: EvalJob) -> Any:
    """SAEBench's ``AbsorptionEvalConfig`` for the job (overrides validated)."""
    return build_config(AbsorptionEvalConfig, "absorption", job.config_values())


def run_one(job: EvalJob, config: Any, name: str, sae: SAE) -> None:
    """SAEBench's ``run_eval`` for one SAE; a record if too few letters pass the gate."""
    job.eval_dir.mkdir(parents=True, exist_ok=True)
    with (
        _experiments_under(job.artifacts_dir),
        _sorted_word_lists(),
        working_directory(job.artifacts_dir),
        restored_grad_mode(),
    ):
        absorption_main.run_eval(
            config, [(name, sae)], job.device, str(job.eval_dir), force_rerun=True
        )
    if not job.result_path(name).is_file():
        _record_not_enough_signal(job, config, name)


def _record_not_enough_signal(job: EvalJob, config: Any, name: str) -> None:
    probe_file = (
        job.artifacts_dir
        / "artifacts"
        / "absorption"
        / f"{name}_custom_sae_k_sparse_probing.json"
    )
    if not probe_file.is_file():
        raise SaeBenchError(
            f"absorption wrote no result for {name!r} and no probe results at {probe_file}"
        )
    f1 = {row["letter"]: row["f1_probe"] for row in json.loads(probe_file.read_text())}
    passing = sorted(
        letter for letter, score in f1.items() if score > config.min_GT_probe_f1
    )
    write_record(
        job.record_path(name),
        {
            "eval": "absorption",
            "sae": name,
            "model_name": job.model_name,
            "reason": (
                f"only {len(passing)} of {len(f1)} first letters have a ground-truth "
                f"probe F1 above min_GT_probe_f1={config.min_GT_probe_f1}; SAEBench "
                f"needs min_feats_for_eval={config.min_feats_for_eval} (the model "
                "shows too little first-letter signal at this layer)"
            ),
            "letters_passing": passing,
            "probe_f1_by_letter": f1,
            "eval_config": config_dict(config),
        },
    )


@contextmanager
def _experiments_under(root: Path) -> Iterator[None]:
    """Give SAEBench's two experiment functions explicit folders under ``root``."""
    probes = root / "probes"
    k_sparse = root / "k_sparse_probing"
    originals = {
        "run_k_sparse_probing_experiment": absorption_main.run_k_sparse_probing_experiment,
        "run_feature_absortion_experiment": absorption_main.run_feature_absortion_experiment,
    }
    folders: dict[str, dict[str, Path]] = {
        "run_k_sparse_probing_experiment": {
            "experiment_dir": k_sparse,
            "probes_dir": probes,
        },
        "run_feature_absortion_experiment": {
            "experiment_dir": root / "feature_absorption",
            "sparse_probing_experiment_dir": k_sparse,
            "probes_dir": probes,
        },
    }
    for attr, kwargs in folders.items():
        setattr(absorption_main, attr, functools.partial(originals[attr], **kwargs))
    try:
        yield
    finally:
        for attr, original in originals.items():
            setattr(absorption_main, attr, original)


@contextmanager
def _sorted_word_lists() -> Iterator[None]:
    """Make absorption's word lists (vocab tokens) come out sorted in every process."""

    def sorted_alpha_tokens(*args: Any, **kwargs: Any) -> list[str]:
        return sorted(get_alpha_tokens(*args, **kwargs))

    modules = (absorption_common, feature_absorption)
    originals: list[Callable[..., list[str]]] = [m.get_alpha_tokens for m in modules]
    for module in modules:
        setattr(module, "get_alpha_tokens", sorted_alpha_tokens)  # noqa: B010
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            setattr(module, "get_alpha_tokens", original)  # noqa: B010


ADAPTER = EvalAdapter(
    name="absorption",
    output_class=AbsorptionEvalOutput,
    make_config=make_config,
    run_one=run_one,
)
