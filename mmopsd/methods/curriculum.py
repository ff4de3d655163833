"""Temporal curriculum (TCOD): distil only the first k turns of each episode, k growing with
training. Evaluation always runs full episodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TemporalCurriculum:
    """``k = start + step // every`` turns per episode are distilled at training step ``step``.

    Args:
        every: steps between increments of k.
        start: turns distilled at step 0.
    """

    every: int
    start: int = 1

    def __post_init__(self) -> None:
        if self.every < 1 or self.start < 1:
            raise ValueError(f"curriculum needs every >= 1 and start >= 1, got {self}")

    def turns_at(self, step: int) -> int:
        """How many leading turns are distilled at ``step`` (0-based)."""
        return self.start + max(0, step) // self.every

    def select(self, turns: Sequence[T], step: int) -> list[T]:
        """The leading turns of one trajectory to distil at ``step``."""
        return list(turns[: self.turns_at(step)])
