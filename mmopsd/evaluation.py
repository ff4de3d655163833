"""Held-out evaluation: success rate with a 95% interval, invalid-action rate, turns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mmopsd.agents.prompting import PromptSpec
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import Provider
from mmopsd.rollout import Sampling, make_envs, rollout


@dataclass
class EvalResult:
    """Summary of an evaluation."""

    success: float
    ci_low: float
    ci_high: float
    episodes: int
    invalid_rate: float
    mean_turns: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(
    policy: Policy,
    env_id: str,
    spec: PromptSpec,
    *,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    split: str = "test",
    batch_size: int = 16,
    max_turns: int = 1,
    max_new_tokens: int = 64,
    provider: Provider | None = None,
    seed_offset: int = 0,
) -> EvalResult:
    """Greedy episodes on seeds ``seed_offset .. seed_offset + episodes - 1`` of ``split``.

    ``provider`` evaluates the policy *with* privileged information (the teacher's view);
    leave it None to evaluate the student.
    """
    env_kwargs = {**(env_kwargs or {}), "split": split}
    sampling = Sampling(max_new_tokens=max_new_tokens, greedy=True)
    trajs = []
    for start in range(0, episodes, batch_size):
        seeds = list(range(seed_offset + start, seed_offset + min(episodes, start + batch_size)))
        envs = make_envs(env_id, len(seeds), **env_kwargs)
        trajs += rollout(
            policy,
            envs,
            seeds,
            spec,
            sampling,
            max_turns=max_turns,
            provider=provider,
            id_prefix="eval",
        )
    wins = sum(t.success for t in trajs)
    turns = [turn for t in trajs for turn in t.turns]
    low, high = wilson_interval(wins, len(trajs))
    return EvalResult(
        success=wins / max(1, len(trajs)),
        ci_low=low,
        ci_high=high,
        episodes=len(trajs),
        invalid_rate=sum(not t.valid for t in turns) / max(1, len(turns)),
        mean_turns=len(turns) / max(1, len(trajs)),
    )
