"""Which turns of a conversation the agent sees: the whole history or a window.

A conversation is a head (optional system message plus the first user message, which states
the task) followed by exchanges (the agent's generated reply, then the environment's next
user message). The head is always kept, so the task never falls out of the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from mmopsd.errors import ConfigError

T = TypeVar("T")


def check_window(k: int | None, name: str = "history window k") -> None:
    """Raise :class:`~mmopsd.errors.ConfigError` unless ``k`` is None (full history) or
    at least 1 (the newest exchange holds the current observation); ``name`` is how the
    caller's user spells the setting."""
    if k is not None and k < 1:
        raise ConfigError(
            f"{name} must be >= 1 (the newest exchange holds the current observation), "
            f"got {k}; leave it unset for the full history"
        )


@dataclass(frozen=True)
class HistoryWindow:
    """Keep the last ``k`` exchanges after the head (``None``: keep all).

    Args:
        k: how many exchanges stay in the context (at least 1: the newest exchange holds the
            current observation). verl-agent's default is 2.
    """

    k: int | None = None

    def __post_init__(self) -> None:
        check_window(self.k)

    def select(self, exchanges: Sequence[T]) -> list[T]:
        """The exchanges to show."""
        if self.k is None:
            return list(exchanges)
        return list(exchanges[max(0, len(exchanges) - self.k) :])
