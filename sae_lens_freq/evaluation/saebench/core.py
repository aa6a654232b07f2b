"""SAEBench's ``core`` eval (reconstruction, sparsity, CE/KL preservation) with real errors.

``sae_bench.evals.core.main.multiple_evals`` catches every exception, logs one line
and returns ``[]``, so a wrong dataset or an incompatible SAE looks like an empty
result. Here each SAE runs alone; its log errors and the exception behind them are
captured, and a missing result file becomes a ``SaeBenchError`` carrying both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import sae_bench.evals.core.main as core_main
from sae_bench.evals.core.eval_config import CoreEvalConfig
from sae_bench.evals.core.eval_output import CoreEvalOutput
from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.job import (
    EvalAdapter,
    EvalJob,
    SaeBenchError,
    build_config,
    config_dict,
)

CORE_SEED = 42
"""Core has no seed setting; SAEBench shuffles its dataset with 42, so we seed with 42."""

SETTINGS_TO_ARGUMENTS = {
    "batch_size_prompts": "eval_batch_size_prompts",
    "n_eval_reconstruction_batches": "n_eval_reconstruction_batches",
    "n_eval_sparsity_variance_batches": "n_eval_sparsity_variance_batches",
    "compute_featurewise_density_statistics": "compute_featurewise_density_statistics",
    "compute_featurewise_weight_based_metrics": "compute_featurewise_weight_based_metrics",
    "exclude_special_tokens_from_reconstruction": "exclude_special_tokens_from_reconstruction",
    "dataset": "dataset",
    "context_size": "context_size",
    "llm_dtype": "dtype",
    "verbose": "verbose",
}
"""The ``CoreEvalConfig`` fields ``multiple_evals`` takes, and its argument names."""

REQUIRED_TRUE = (
    "compute_featurewise_density_statistics",
    "compute_featurewise_weight_based_metrics",
)
"""Off, core's ``misc_metrics`` stay empty and its own output schema rejects the result."""


def make_config(job: EvalJob) -> CoreEvalConfig:
    """A ``CoreEvalConfig`` of the settings ``multiple_evals`` accepts."""
    core_fields = {f.name for f in fields(CoreEvalConfig)}
    unsupported = sorted(
        key
        for key in job.overrides
        if key in core_fields and key not in SETTINGS_TO_ARGUMENTS
    )
    if unsupported:
        raise ValueError(
            f"core.{unsupported[0]} cannot be set: SAEBench's multiple_evals takes "
            f"only {', '.join(SETTINGS_TO_ARGUMENTS)}"
        )
    for key in REQUIRED_TRUE:
        if job.overrides.get(key, True) is not True:
            raise ValueError(
                f"core.{key}={job.overrides[key]!r} is not allowed: it must be True, or "
                "SAEBench's core output fails its own schema (misc_metrics missing)"
            )
    values = {
        "llm_dtype": job.llm_dtype,
        **dict.fromkeys(REQUIRED_TRUE, True),
        **job.overrides,
        "model_name": job.model_name,
    }
    return build_config(CoreEvalConfig, "core", values)


def requested(config: CoreEvalConfig) -> dict[str, Any]:
    """The stored config fields a reusable result must match (those we set)."""
    stored = config_dict(config)
    return {key: stored[key] for key in [*SETTINGS_TO_ARGUMENTS, "model_name"]}


def run_one(job: EvalJob, config: CoreEvalConfig, name: str, sae: SAE) -> None:
    """``multiple_evals`` for one SAE; raise what it swallowed if no result appears."""
    arguments = {
        arg: getattr(config, key) for key, arg in SETTINGS_TO_ARGUMENTS.items()
    }
    with _captured_failures() as failures:
        core_main.multiple_evals(
            selected_saes=[(name, sae)],
            output_folder=str(job.eval_dir),
            device=job.device,
            force_rerun=True,
            **arguments,
        )
    if not job.result_path(name).is_file():
        messages = "; ".join(failures.messages) or "no error was logged"
        if failures.exception is not None:
            messages += f" (raised {type(failures.exception).__name__})"
        raise SaeBenchError(
            f"core produced no result for {name!r}: {messages}"
        ) from failures.exception


class _Failures:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.exception: BaseException | None = None


class _ListHandler(logging.Handler):
    def __init__(self, failures: _Failures) -> None:
        super().__init__(level=logging.ERROR)
        self.failures = failures

    def emit(self, record: logging.LogRecord) -> None:
        self.failures.messages.append(record.getMessage())


@contextmanager
def _captured_failures() -> Iterator[_Failures]:
    """Collect core's logged errors and the exception ``run_evals`` raised, if any."""
    failures = _Failures()
    handler = _ListHandler(failures)
    original_run_evals = core_main.run_evals

    def run_evals(*args: Any, **kwargs: Any) -> Any:
        try:
            return original_run_evals(*args, **kwargs)
        except Exception as err:
            failures.exception = err
            raise

    core_main.logger.addHandler(handler)
    core_main.run_evals = run_evals
    try:
        yield failures
    finally:
        core_main.run_evals = original_run_evals
        core_main.logger.removeHandler(handler)


ADAPTER = EvalAdapter(
    name="core",
    output_class=CoreEvalOutput,
    make_config=make_config,
    run_one=run_one,
    seed_of=lambda _config: CORE_SEED,
    requested=requested,
)
