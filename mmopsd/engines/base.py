"""The rollout-engine protocol: prompts in as exact ids, sampled responses out as exact ids.

Every rollout samples through an engine: a run builds the one its config names (``hf`` by
default) and an evaluation without one uses the policy's own
(:meth:`~mmopsd.policies.base.Policy.default_engine`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mmopsd.types import Encoded, Message


@dataclass
class Generation:
    """One sampled response.

    Attributes:
        ids: the response's token ids, ending with the end-of-sequence id when the model
            stopped by itself.
        logprobs: the engine's log-probability of each id, where the engine gives them.
        exact: False when the ids were recovered by tokenizing the engine's text (a server
            that returns no ids); such ids may differ from the ones the engine sampled.
    """

    ids: list[int]
    logprobs: list[float] | None = None
    exact: bool = True


class Engine(Protocol):
    """Samples one response per prompt.

    Attributes:
        name: the engine's config name (``hf``, ``vllm``, ``openai``).
        follows_weights: True when :meth:`sync` puts the trained weights into the engine,
            so its samples are the current student's (the trainer then evaluates through
            it too); False for a server this run cannot update.
    """

    name: str
    follows_weights: bool

    def generate(
        self,
        prompts: Sequence[Encoded],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        greedy: bool = False,
        conversations: Sequence[Sequence[Message]] | None = None,
        assistant_prefix: str = "",
    ) -> list[Generation]:
        """One :class:`Generation` per prompt, in order.

        ``conversations`` are the messages each prompt was encoded from (ending with the
        forced ``assistant_prefix``): an engine that sends messages rather than ids (a chat
        server) answers those; engines that sample from ids ignore both."""
        ...

    def sync(self, model: Any) -> None:
        """Load ``model``'s current weights (after an optimizer step); a no-op for engines
        that sample from the trained model itself or cannot be updated."""
        ...

    def sleep(self) -> None:
        """Free accelerator memory for training (a no-op where nothing is held)."""
        ...

    def wake(self) -> None:
        """Take back what :meth:`sleep` freed, before the next rollouts."""
        ...
