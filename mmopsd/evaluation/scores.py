"""One environment's score in a suite or on a leaderboard: BALROG's metric (success, or
progression where the benchmark has no success) with its standard error, and the suite
average."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmopsd.evaluation.core import EvalResult
    from mmopsd.evaluation.tasks import EvalTask


@dataclass
class EnvScore:
    """One environment's result in a suite."""

    env: str
    name: str
    metric: str  # "success" or "progression"
    score: float
    stderr: float
    episodes: int
    invalid_rate: float
    mean_turns: float
    tokens_per_episode: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)


def score_of(entry: EvalTask, result: EvalResult, seconds: float) -> EnvScore:
    """BALROG's metric for one environment: progression where the environment reports it
    (its mean and the standard error over episodes), else success (binomial standard
    error)."""
    if result.progression is not None:
        metric, value, spread = "progression", result.progression, result.progression_std
    else:
        metric, value = "success", result.success
        spread = math.sqrt(value * (1 - value))
    return EnvScore(
        env=entry.env,
        name=entry.name,
        metric=metric,
        score=value,
        stderr=spread / math.sqrt(max(1, result.episodes)),
        episodes=result.episodes,
        invalid_rate=result.invalid_rate,
        mean_turns=result.mean_turns,
        tokens_per_episode=result.tokens_per_episode,
        seconds=round(seconds, 1),
    )


def average(scores: Sequence[EnvScore]) -> tuple[float, float]:
    """The suite average and its standard error (independent environments)."""
    n = max(1, len(scores))
    mean = sum(s.score for s in scores) / n
    return mean, math.sqrt(sum(s.stderr**2 for s in scores)) / n
