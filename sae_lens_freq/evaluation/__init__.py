"""Evaluation: the ground-truth absorption benchmark (``evaluation.absorption``) and more."""
