"""``gkd``: generalized knowledge distillation's mixture of on- and off-policy data.

A share λ (``teacher_share``, in whole groups) of each step's episodes is played by the
teacher with privileged information, the rest by the student; every episode is then scored
and trained as in ``opsd`` (the teacher's divergence on the played tokens). λ = 0 is ``opsd``.
"""

from __future__ import annotations

from typing import ClassVar

from mmopsd.errors import ConfigError
from mmopsd.methods.base import Player, register, teacher_groups
from mmopsd.methods.opsd import OPSD


@register("gkd")
class GKD(OPSD):
    """OPSD on a mixture of the teacher's and the student's episodes (see the module doc)."""

    fixed: ClassVar = {
        "actor": ("student",), "rl": ("none",), "distill_coef": (1.0,), "rollout.engine": ("hf",),
    }  # fmt: skip

    def check(self) -> None:
        if not 0.0 < self.settings.teacher_share <= 1.0:
            raise ConfigError(
                "method gkd mixes the teacher's episodes into the student's: set "
                f"teacher_share in (0, 1], got {self.settings.teacher_share} (0 is method opsd)"
            )

    def players(self, episodes: int) -> list[Player]:
        k = teacher_groups(self.settings.teacher_share, episodes, self.settings.group_size)
        return ["teacher"] * k + ["student"] * (episodes - k)
