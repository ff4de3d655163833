"""``grpo``: RL on the environment reward alone, no distillation.

The student plays groups of ``group_size`` episodes per task and seed; each episode's
advantage is its reward against its group's (GRPO, or RLOO with ``rl_advantage: rloo``),
optimised with PPO's clipped ratio (``clip_eps``) over ``ppo_epochs`` passes per batch, plus
an optional k3 KL penalty to the initial model (``kl_coef``; the ``frozen`` teacher is the
initial model).
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.methods.base import register
from mmopsd.methods.opsd_grpo import GroupRL
from mmopsd.methods.planning import with_penalty
from mmopsd.methods.terms import PolicyGradient, Term


@register("grpo")
class GRPO(GroupRL):
    """RL on the reward alone (see the module doc)."""

    fixed: ClassVar = {
        "actor": ("student",), "rl": ("add",), "distill_coef": (0.0,), "teacher_share": (0.0,),
        "teacher.update": ("frozen",),
    }  # fmt: skip

    def terms(self) -> tuple[Term, ...]:
        return with_penalty(self.settings, PolicyGradient(clip_eps=self.settings.clip_eps))
