"""Training FreqSAEs through SAELens: the runner, its checkpoints, presets and logs.

``FreqSAETrainingRunner`` is SAELens's ``LanguageModelSAETrainingRunner`` with
signal-safe checkpoints, exact resume, seeding, local pre-tokenised datasets and a
plain-file metrics log; ``PAPER_PRESET`` is the paper's reference run.
"""

from sae_lens_freq.training.checkpointing import RESUME_STATE_FILENAME, ResumeState
from sae_lens_freq.training.interrupts import TrainingInterrupted
from sae_lens_freq.training.metrics_log import METRICS_FILENAME, read_metrics
from sae_lens_freq.training.presets import PAPER_PRESET, PRESETS
from sae_lens_freq.training.runner import FreqSAETrainingRunner

__all__ = [
    "METRICS_FILENAME",
    "PAPER_PRESET",
    "PRESETS",
    "RESUME_STATE_FILENAME",
    "FreqSAETrainingRunner",
    "ResumeState",
    "TrainingInterrupted",
    "read_metrics",
]
