"""SAEBench's sparse-probing eval, with jaxtyping's runtime checks off for the call.

``sae_bench.evals.sparse_probing.probe_training`` decorates its top-k helpers with
``@jaxtyped(typechecker=beartype)``; with this project's beartype their own return
values fail the check (``BeartypeCallHintParamViolation``). The checks are switched
off for the duration of the call only. Datasets and caches as in ``scr_tpp``.
"""

from __future__ import annotations

import sae_bench.evals.sparse_probing.main as sparse_probing_main
from sae_bench.evals.sparse_probing.eval_config import SparseProbingEvalConfig
from sae_bench.evals.sparse_probing.eval_output import SparseProbingEvalOutput
from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.environment import (
    jaxtyping_checks_disabled,
    restored_grad_mode,
)
from sae_lens_freq.evaluation.saebench.job import EvalAdapter, EvalJob, build_config


def make_config(job: EvalJob) -> SparseProbingEvalConfig:
    """SAEBench's ``SparseProbingEvalConfig`` for the job (overrides validated)."""
    return build_config(SparseProbingEvalConfig, "sparse_probing", job.config_values())


def run_one(job: EvalJob, config: SparseProbingEvalConfig, name: str, sae: SAE) -> None:
    """SAEBench's sparse-probing ``run_eval`` for one SAE."""
    with job.datasets_directory(), jaxtyping_checks_disabled(), restored_grad_mode():
        sparse_probing_main.run_eval(
            config,
            [(name, sae)],
            job.device,
            str(job.eval_dir),
            force_rerun=True,
            artifacts_path=str(job.artifacts_dir),
        )


ADAPTER = EvalAdapter(
    name="sparse_probing",
    output_class=SparseProbingEvalOutput,
    make_config=make_config,
    run_one=run_one,
)
