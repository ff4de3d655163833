"""Helpers the methods share: a batch planned with a method's distillation settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmopsd.config import MethodConfig
from mmopsd.methods.curriculum import TemporalCurriculum
from mmopsd.methods.terms import Divergence, KLPenalty, Term
from mmopsd.methods.turn_plan import plan_turns

if TYPE_CHECKING:
    from mmopsd.methods.base import Batch
    from mmopsd.methods.turn_plan import TurnSample


def planned(batch: Batch, s: MethodConfig, **terms: Any) -> list[TurnSample]:
    """:func:`~mmopsd.methods.turn_plan.plan_turns` of ``batch`` with the turn weighting,
    curriculum and RL options of ``s``; ``terms`` overrides any of them (``rl``,
    ``distill_coef``, ``success_only``, ...)."""
    curriculum = (
        TemporalCurriculum(s.curriculum_every, s.curriculum_start) if s.curriculum_every else None
    )
    options: dict[str, Any] = dict(
        step=batch.step - 1,
        turn_weighting=s.turn_weighting,
        weighting_kwargs=s.turn_weighting_kwargs,
        curriculum=curriculum,
        rl=s.rl,
        rl_coef=s.rl_coef,
        advantage=s.rl_advantage,
        distill_coef=s.distill_coef,
        success_only=s.success_only,
        keep_all=s.kl_coef > 0,
        divergences=batch.divergences,
    )
    options.update(terms)
    return plan_turns(batch.trajectories, **options)


def divergence(s: MethodConfig) -> Divergence:
    """The distillation term of ``s``'s loss and options."""
    return Divergence(loss=s.loss, options=dict(s.loss_kwargs))


def with_penalty(s: MethodConfig, *terms: Term) -> tuple[Term, ...]:
    """``terms`` plus the KL penalty to the initial model where ``s`` weighs it."""
    return (*terms, KLPenalty(coef=s.kl_coef)) if s.kl_coef else terms
