"""Training methods, one file each: who plays each episode, which turns are trained by which
loss terms (:class:`Method`). ``method.name`` in a config names one; ``mmopsd list`` shows them.

=============  ==========================================================================
``custom``     no preset (the default): every field as the config sets it; the default
               fields are those of ``opsd``.
``opsd``       on-policy self-distillation: the student plays, the teacher with privileged
               information scores its tokens, no RL term.
``gkd``        ``opsd`` on a mixture: the teacher plays a share λ (``teacher_share``) of
               the episodes.
``opsd_grpo``  ``opsd`` plus GRPO on the environment reward (``rl: add``, or ``route``).
``sft_teacher`` off-policy distillation: the teacher with privileged information plays and
               the student learns its response ids by cross-entropy under its own context.
``grpo``       RL on the reward alone: group-relative advantages, PPO's clipped ratio over
               ``ppo_epochs`` passes, an optional KL penalty to the initial model.
``dagger``     the student plays; the expert's next action labels every state it visits.
``bc_expert``  the environment's scripted expert plays; the student learns its actions
               (behaviour cloning: DAgger's off-policy counterpart, same labels).
``opsd_label`` ``opsd``, plus the expert's action as a hard label on turns whose
               teacher-student gap passes ``label_threshold``.
=============  ==========================================================================

A method fixes the fields of the ``method`` section that define it (a field left at its
default takes the method's value); a config that sets one of them to another value is an error
naming both (:func:`resolve`). ``config.yaml`` records the method and its fields.
"""

from __future__ import annotations

from typing import Any

from mmopsd.methods import (  # noqa: F401
    bc_expert,
    custom,
    dagger,
    gkd,
    grpo,
    opsd,
    opsd_grpo,
    opsd_label,
    sft_teacher,
)
from mmopsd.methods.base import (
    METHODS,
    Batch,
    Method,
    Player,
    build_method,
    register,
    resolve,
)

# Per method: field -> allowed values (the first is the one set when the config is silent).
PRESETS: dict[str, dict[str, tuple[Any, ...]]] = {n: dict(METHODS.get(n).fixed) for n in METHODS}

__all__ = [
    "METHODS",
    "PRESETS",
    "Batch",
    "Method",
    "Player",
    "build_method",
    "register",
    "resolve",
]
