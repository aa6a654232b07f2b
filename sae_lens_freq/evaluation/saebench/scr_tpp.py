"""SAEBench's SCR (spurious correlation removal) and TPP (targeted probe perturbation).

Both run ``sae_bench.evals.scr_and_tpp.main.run_eval``; ``perform_scr`` picks which.
Its activation and probe caches go to the job's artifacts folder (SAEBench's
``artifacts_path`` argument, default ``./artifacts``). Its datasets
(``LabHC/bias_in_bios``, ``canrager/amazon_reviews_mcauley_1and5``) load with
``datasets.load_dataset(name)``, which takes a local folder of that relative path
first: ``data_dir`` names the folder holding such copies (offline machines).
"""

from __future__ import annotations

from typing import Any

import sae_bench.evals.scr_and_tpp.main as scr_tpp_main
from sae_bench.evals.scr_and_tpp.eval_config import ScrAndTppEvalConfig
from sae_bench.evals.scr_and_tpp.eval_output import ScrEvalOutput, TppEvalOutput
from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.environment import restored_grad_mode
from sae_lens_freq.evaluation.saebench.job import EvalAdapter, EvalJob, build_config


def _make_config(perform_scr: bool) -> Any:
    eval_name = "scr" if perform_scr else "tpp"

    def make_config(job: EvalJob) -> ScrAndTppEvalConfig:
        if "perform_scr" in job.overrides:
            raise ValueError(
                f"{eval_name}.perform_scr cannot be set: choose the eval by name "
                "('scr' or 'tpp')"
            )
        values = job.config_values(perform_scr=perform_scr)
        return build_config(ScrAndTppEvalConfig, eval_name, values)

    return make_config


def run_one(job: EvalJob, config: ScrAndTppEvalConfig, name: str, sae: SAE) -> None:
    """SAEBench's SCR/TPP ``run_eval`` for one SAE, caches under the job's artifacts."""
    with job.datasets_directory(), restored_grad_mode():
        scr_tpp_main.run_eval(
            config,
            [(name, sae)],
            job.device,
            str(job.results_dir),
            force_rerun=True,
            artifacts_path=str(job.artifacts_dir),
        )


SCR_ADAPTER = EvalAdapter(
    name="scr",
    output_class=ScrEvalOutput,
    make_config=_make_config(perform_scr=True),
    run_one=run_one,
)

TPP_ADAPTER = EvalAdapter(
    name="tpp",
    output_class=TppEvalOutput,
    make_config=_make_config(perform_scr=False),
    run_one=run_one,
)
