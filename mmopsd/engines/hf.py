"""The default rollout engine: batched Hugging Face ``generate`` on the trained model itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmopsd.engines.base import Generation
from mmopsd.engines.prefix_cache import PrefixCache
from mmopsd.types import Encoded, Message


class HFEngine:
    """Samples with the policy's own model, so it always follows the trained weights.

    Args:
        policy: the student :class:`~mmopsd.policies.base.Policy`.
        logprobs: also return each sampled id's log-probability as seen while generating
            (costs one ``[B, V]`` row of logits per generated position; the trainer then
            logs the engine/trainer mismatch, which measures how far cached, padded
            generation drifts from the scoring forward).
    """

    name = "hf"
    follows_weights = True

    def __init__(self, policy: Any, *, logprobs: bool = False, reuse_prefix: bool = True) -> None:
        self.policy = policy
        self.logprobs = logprobs
        model = getattr(policy, "model", None)
        usable = reuse_prefix and not policy.sees_images and PrefixCache.supports(model)
        self.prefix_cache = PrefixCache() if usable else None

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
        """One response per prompt from ``policy.sample`` (the conversations are not
        needed: the prompts are the exact ids)."""
        return self.policy.sample(
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            greedy=greedy,
            logprobs=self.logprobs,
            prefix_cache=self.prefix_cache,
        )

    def sync(self, model: Any) -> None:
        """Nothing to sync, the engine is the trained model; kept key-value rows are
        forgotten (the weights changed)."""
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    def sleep(self) -> None:
        """Nothing is held apart from the trained model."""

    def wake(self) -> None:
        """See :meth:`sleep`."""
