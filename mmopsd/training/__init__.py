"""Training: the loop and everything one optimizer step is made of.

Start at :mod:`mmopsd.training.loop` (``train``: resume or start, the loop, evaluation and
save cadence, summary), then :mod:`~mmopsd.training.components` (config -> components),
:mod:`~mmopsd.training.step` (one step) and :mod:`~mmopsd.training.views` (per-turn teacher
contexts and the leak check). Turn planning (which turns are distilled, how much, with what
RL advantage) lives in :mod:`~mmopsd.methods.turn_plan` and the modules it uses:
:mod:`~mmopsd.methods.turn_weighting`, :mod:`~mmopsd.methods.advantages` and
:mod:`~mmopsd.methods.curriculum`. The scoring passes and the backward are in
:mod:`~mmopsd.training.distill`; teachers in :mod:`~mmopsd.training.teachers`; checkpoints
and resuming in :mod:`~mmopsd.training.checkpoint` and :mod:`~mmopsd.training.resume`;
data-parallel runs in :mod:`~mmopsd.parallel`.

This package's ``__init__`` imports nothing, so that its leaf modules (``parallel``,
``metrics``) can be used by evaluation without loading the loop; ``from mmopsd import train``
is the public entry point.
"""
