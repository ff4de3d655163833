"""``opsd_grpo``: on-policy self-distillation plus GRPO on the environment reward.

The student plays; its turns are trained by the teacher's divergence and by a group-relative
policy-gradient term (``rl: add``, both on every episode), or routed (``rl: route``: won
episodes to the RL term, lost ones to distillation). Groups are ``group_size`` episodes of
one task and seed.
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.errors import ConfigError
from mmopsd.methods.base import Method, register
from mmopsd.methods.planning import divergence, with_penalty
from mmopsd.methods.terms import PolicyGradient, Term


class GroupRL(Method):
    """A method with a group-relative RL term: groups of two or more episodes, ``ppo_epochs``
    optimizer passes per batch."""

    def check(self) -> None:
        check_groups(self.name, self.settings.group_size)

    @property
    def passes(self) -> int:
        return self.settings.ppo_epochs


@register("opsd_grpo")
class OPSDGRPO(GroupRL):
    """Self-distillation plus GRPO (see the module doc)."""

    fixed: ClassVar = {
        "actor": ("student",), "rl": ("add", "route"), "distill_coef": (1.0,),
        "teacher_share": (0.0,),
    }  # fmt: skip

    def terms(self) -> tuple[Term, ...]:
        rl = PolicyGradient(clip_eps=self.settings.clip_eps)
        return with_penalty(self.settings, divergence(self.settings), rl)


def check_groups(method: str, group_size: int) -> None:
    """A group-relative advantage needs groups of two or more episodes."""
    if group_size < 2:
        raise ConfigError(
            f"method {method} compares episodes of one task and seed: group_size {group_size} "
            "gives every advantage 0, so the RL term never has a gradient; set group_size: 4 "
            "(batch_size a multiple of it)"
        )
