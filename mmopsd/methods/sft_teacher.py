"""``sft_teacher``: off-policy distillation, the main baseline of self-distillation.

The teacher with privileged information plays every episode (greedy with ``temperature:
0``); the student learns the teacher's response ids by cross-entropy under the student's own
context. ``success_only: true`` keeps only won episodes (rejection sampling). The teacher's
scores are never read.
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.methods.base import Method, Player, register
from mmopsd.methods.planning import with_penalty
from mmopsd.methods.terms import CrossEntropy, Term


@register("sft_teacher")
class SFTTeacher(Method):
    """Supervised learning of the privileged teacher's episodes (see the module doc)."""

    fixed: ClassVar = {
        "actor": ("teacher",), "loss": ("sft",), "rl": ("none",), "distill_coef": (1.0,),
        "token_weighting": ("none",), "rollout.engine": ("hf",), "teacher_share": (0.0,),
    }  # fmt: skip

    def players(self, episodes: int) -> list[Player]:
        return ["teacher"] * episodes

    def terms(self) -> tuple[Term, ...]:
        return with_penalty(self.settings, CrossEntropy(options=dict(self.settings.loss_kwargs)))
