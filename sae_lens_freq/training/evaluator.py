"""The in-training evaluator, with the paper's KL-divergence score.

SAELens's ``LLMSaeEvaluator`` computes the CE-loss score but not the KL score, the
paper's headline metric (Table 1, Figure 1b). This evaluator keeps SAELens's and
adds one more ``run_evals`` pass over the same reconstruction batches count with
``compute_kl=True``, so ``metrics.jsonl`` and W&B carry
``model_behavior_preservation/kl_div_score`` beside the CE score.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sae_lens.evals import EvalConfig, run_evals
from sae_lens.llm_sae_training_runner import LLMSaeEvaluator
from sae_lens.training.activation_scaler import ActivationScaler
from sae_lens.training.prefetch import PrefetchingIterator
from sae_lens.training.types import DataProvider


@dataclass
class KLScoreEvaluator(LLMSaeEvaluator[Any]):
    """SAELens's training evaluator plus the KL-divergence score."""

    def __call__(
        self,
        sae: Any,
        data_provider: DataProvider,
        activation_scaler: ActivationScaler,
    ) -> dict[str, Any]:
        metrics = super().__call__(sae, data_provider, activation_scaler)
        # A prefetching producer thread shares the store's generator state.
        pause: AbstractContextManager[None] = (
            data_provider.paused()
            if isinstance(data_provider, PrefetchingIterator)
            else nullcontext()
        )
        with pause:
            kl_metrics, _ = run_evals(
                sae=sae,
                activation_store=self.activations_store,
                model=self.model,
                activation_scaler=activation_scaler,
                eval_config=EvalConfig(
                    batch_size_prompts=self.eval_batch_size_prompts,
                    n_eval_reconstruction_batches=self.n_eval_batches,
                    compute_kl=True,
                ),
                model_kwargs=self.model_kwargs,
                exclude_special_tokens=self._special_tokens(),
            )
        behavior = kl_metrics.get("model_behavior_preservation", {})
        if behavior:
            metrics["model_behavior_preservation"] = behavior
        return metrics

    def _special_tokens(self) -> list[int] | bool:
        excluded = self.activations_store.exclude_special_tokens
        return False if excluded is None else excluded.tolist()
