"""SAEBench evaluation of SAELens checkpoints, FreqSAEs included.

``run_saebench(checkpoints, evals, out_dir, model=None, model_name=None, ...)``
exports each checkpoint as SAEBench expects (plain ``standard`` SAE, unit-norm
decoder), runs SAEBench's own entry point for each eval with every artifact under
``out_dir``, seeded and with sorted vocabularies, and writes one schema-valid result
per SAE and eval plus a summary table. ``sae-lens-freq saebench`` is its command line.

Imported lazily: ``import sae_lens_freq`` does not pay for importing SAEBench.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sae_lens_freq.evaluation.saebench.job import SaeBenchError
    from sae_lens_freq.evaluation.saebench.runner import EVALS, run_saebench

__all__ = ["EVALS", "SaeBenchError", "run_saebench"]


def __getattr__(name: str) -> Any:
    if name in ("EVALS", "run_saebench"):
        from sae_lens_freq.evaluation.saebench import runner

        return getattr(runner, name)
    if name == "SaeBenchError":
        from sae_lens_freq.evaluation.saebench.job import SaeBenchError

        return SaeBenchError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
