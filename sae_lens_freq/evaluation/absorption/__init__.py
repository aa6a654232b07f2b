"""Ground-truth absorption benchmark (``sae-lens-freq bench absorption``).

SAEs trained by SAELens's ``SAETrainer`` on ``sae_lens.synthetic`` activations whose
features and parent/child hierarchy are known; absorption measured against them.
Modules: ``config`` (what to run), ``data`` (the synthetic model), ``contenders``
(building and training SAEs), ``calibrate`` (equal L0), ``metrics`` (definitions),
``bench`` (orchestration), ``report`` and ``plots`` (outputs).
"""
