"""``bc_expert``: the environment's scripted expert plays; the student learns its actions.

Behaviour cloning of the expert's own trajectories, the supervised (SFT) baseline of the
self-distillation papers: off-policy imitation with hard labels, trained on the states the
expert visits and never on those the student's own mistakes lead to. Each turn's reply is the
expert's next action (``info["privileged"]["next_action"]``) in the same ids
:mod:`~mmopsd.methods.dagger` labels with, so the two differ only in who plays: the fair
off-policy counterpart of DAgger. Turns where the expert names no action are not trained.
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.methods.base import Player, register
from mmopsd.methods.dagger import DAgger


@register("bc_expert")
class ExpertCloning(DAgger):
    """The expert plays every episode; cross-entropy on its actions."""

    fixed: ClassVar = {"actor": ("expert",), "rl": ("none",), "teacher_share": (0.0,)}

    def players(self, episodes: int) -> list[Player]:
        return ["expert"] * episodes
