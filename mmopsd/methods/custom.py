"""``custom`` (the default): no preset; every method field as the config sets it.

Who plays follows ``actor`` and ``teacher_share``; the terms are the distillation term
(``loss``; ``sft`` is cross-entropy on the played ids), the RL term where ``rl`` is not
``none``, and the KL penalty where ``kl_coef`` weighs it. The default fields make it
``opsd``.
"""

from __future__ import annotations

from mmopsd.methods.base import Method, Player, register, teacher_groups
from mmopsd.methods.planning import divergence, with_penalty
from mmopsd.methods.terms import CrossEntropy, PolicyGradient, Term


@register("custom")
class Custom(Method):
    """Every field as configured (see the module doc)."""

    def players(self, episodes: int) -> list[Player]:
        s = self.settings
        if s.actor == "expert":
            return ["expert"] * episodes
        k = teacher_groups(1.0 if s.actor == "teacher" else s.teacher_share, episodes, s.group_size)
        return ["teacher"] * k + ["student"] * (episodes - k)

    @property
    def passes(self) -> int:
        return self.settings.ppo_epochs

    def terms(self) -> tuple[Term, ...]:
        s = self.settings
        first = CrossEntropy(options=dict(s.loss_kwargs)) if s.loss == "sft" else divergence(s)
        rl = (PolicyGradient(clip_eps=s.clip_eps),) if s.rl != "none" else ()
        return with_penalty(s, first, *rl)
