"""``dagger``: the student plays; the expert's next action labels every state it visits.

DAgger (Ross et al., 2011) trains on the states the learner's own policy reaches, so it
learns to recover from its own mistakes, with the expert's action in each of them as the
supervised label. Here the environment's expert writes its next action into each turn's
``info["privileged"]["next_action"]``; every turn that has one is trained by cross-entropy on
the action's ids (and the end of the turn) under the student's own prompt. Turns without an
expert action are not trained. No teacher is scored.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from mmopsd.methods.base import Batch, Method, register
from mmopsd.methods.planning import planned
from mmopsd.methods.terms import CrossEntropy, Term
from mmopsd.policies.expert import expert_action, expert_ids

if TYPE_CHECKING:
    from mmopsd.methods.turn_plan import TurnSample
    from mmopsd.policies.base import Policy
    from mmopsd.types import Trajectory, Turn


@register("dagger")
class DAgger(Method):
    """The student plays; each visited state is labelled with the expert's next action."""

    fixed: ClassVar = {"actor": ("student",), "rl": ("none",), "teacher_share": (0.0,)}

    def plan(self, batch: Batch) -> list[TurnSample]:
        labelled = [_labelled(tr, batch.policy) for tr in batch.trajectories]
        return planned(dataclasses.replace(batch, trajectories=labelled), self.settings)

    def terms(self) -> tuple[Term, ...]:
        return (CrossEntropy(),)


def _labelled(trajectory: Trajectory, policy: Policy) -> Trajectory:
    """``trajectory`` with each turn's response replaced by the expert's next action (no
    response, so not trained, where the expert said nothing)."""
    turns = [label_turn(turn, policy) for turn in trajectory.turns]
    return dataclasses.replace(trajectory, turns=turns)


def label_turn(turn: Turn, policy: Policy) -> Turn:
    """``turn`` with its reply replaced by the expert's next action (an empty reply, so not
    trained, where the expert names none)."""
    action = expert_action(turn.info)
    ids = expert_ids(policy, action) if action is not None else []
    return dataclasses.replace(
        turn, response_ids=ids, response_mask=None, sampled_logprobs=None,
        response_text=action or "",
    )  # fmt: skip
