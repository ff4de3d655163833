"""``opsd_label``: ``opsd``, plus the expert's action as a hard label on the turns where the
teacher and the student disagree most.

Self-distillation's signal is soft and weak where the student is far from its teacher; a
supervised label there (SACD's rule: a hard target past a gap threshold) moves it faster,
while the turns it already handles keep learning from the teacher alone. Each turn's gap is
the mean ``|log S - log T|`` of its sampled tokens; a turn past ``method.label_threshold``
whose state names the expert's next action is trained twice: the divergence on the student's
own reply, and cross-entropy on the expert's action (DAgger's label, weighted by
``method.label_coef`` times the turn's share of the objective).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mmopsd.methods.base import Batch, Method, register
from mmopsd.methods.dagger import label_turn
from mmopsd.methods.planning import divergence, planned, with_penalty
from mmopsd.methods.terms import HardLabel, Term
from mmopsd.methods.turn_plan import TurnSample
from mmopsd.policies.expert import expert_action


@register("opsd_label")
class OPSDLabel(Method):
    """The student plays; divergence on every turn, the expert's label past the gap."""

    fixed: ClassVar = {"actor": ("student",), "rl": ("none",), "teacher_share": (0.0,)}

    @property
    def reads_divergences(self) -> bool:
        return True

    def plan(self, batch: Batch) -> list[TurnSample]:
        samples = planned(batch, self.settings)
        return [*samples, *(self._label(s, batch) for s in samples if self._needs_label(s, batch))]

    def _needs_label(self, sample: TurnSample, batch: Batch) -> bool:
        """Past the gap threshold, in a state that names the expert's action."""
        gap = (batch.divergences or {}).get((sample.trajectory, sample.index), 0.0)
        return gap > self.settings.label_threshold and expert_action(sample.turn.info) is not None

    def _label(self, sample: TurnSample, batch: Batch) -> TurnSample:
        """The turn relabelled with the expert's action, trained by the label term alone."""
        turn = label_turn(sample.turn, batch.policy)
        weight = self.settings.label_coef * sample.share
        return dataclasses.replace(sample, turn=turn, distill=0.0, rl=0.0, label=weight)

    def terms(self) -> tuple[Term, ...]:
        return with_penalty(self.settings, divergence(self.settings), HardLabel())
