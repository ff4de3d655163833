"""``opsd``: on-policy self-distillation.

The student plays every episode; the same model with privileged information (the teacher)
scores the student's sampled tokens, and a token-level divergence between the two next-token
distributions (``loss``, forward KL by default) trains the student on every turn (turn
weighting and the TCOD curriculum as configured). No RL term.
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.methods.base import Method, register
from mmopsd.methods.planning import divergence, with_penalty
from mmopsd.methods.terms import Term


@register("opsd")
class OPSD(Method):
    """On-policy self-distillation (see the module doc)."""

    fixed: ClassVar = {
        "actor": ("student",), "rl": ("none",), "distill_coef": (1.0,), "teacher_share": (0.0,),
    }  # fmt: skip

    def terms(self) -> tuple[Term, ...]:
        return with_penalty(self.settings, divergence(self.settings))
