"""Named lists of benchmark environments, evaluated together: ``mmopsd eval --suite NAME``.

A suite is a tuple of :class:`SuiteEntry` (an id with its episode count, turn cap and the
provider that gives the teacher its privileged view). Results per environment carry BALROG's
metric (success, or progression where the benchmark has no success, with its standard error),
the invalid-action rate, mean turns, tokens per episode and time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mmopsd.agents.prompting import prompt_for
from mmopsd.envs import MINIWOB
from mmopsd.evaluation import EvalResult, evaluate
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import MissingPrivilegedKey, Provider, build_provider
from mmopsd.registry import Registry
from mmopsd.types import Message, TeacherContext


@dataclass(frozen=True)
class SuiteEntry:
    """One environment of a suite.

    Attributes:
        env: the registered id.
        episodes: held-out episodes.
        max_turns: turn cap per episode.
        max_new_tokens: response length cap.
        provider: the provider of the teacher's view (``--with-privileged``).
        provider_kwargs: its options.
        env_kwargs: keyword arguments of the environment.
    """

    env: str
    episodes: int
    max_turns: int
    max_new_tokens: int = 12
    provider: str = "hint"
    provider_kwargs: Mapping[str, Any] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short column name: the id without ``mmopsd/`` and the version."""
        return self.env.removeprefix("mmopsd/").rsplit("-v", 1)[0]


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


SUITES: Registry[tuple[SuiteEntry, ...]] = Registry("suite")
GUI = tuple(
    SuiteEntry(f"mmopsd/MiniWoB-{task}-v0", episodes=8, max_turns=4, max_new_tokens=16)
    for task in MINIWOB
)
EMBODIED = (
    *(
        SuiteEntry(f"mmopsd/BabyAI-{level}-v0", episodes=8, max_turns=10, max_new_tokens=4)
        for level in ("GoToLocal", "GoTo", "Pickup", "Open", "PutNextLocal", "SynthSeq")
    ),
    SuiteEntry("mmopsd/Crafter-v0", episodes=2, max_turns=30, max_new_tokens=6),
    SuiteEntry("mmopsd/ALFWorld-v0", episodes=4, max_turns=8, max_new_tokens=12),
)
SUITES.add("gui", GUI)
SUITES.add("embodied", EMBODIED)
SUITES.add("all", GUI + EMBODIED)


def run_suite(
    policy: Policy,
    entries: Sequence[SuiteEntry],
    *,
    with_privileged: bool = False,
    episodes: int | None = None,
    max_turns: int | None = None,
    progress: Any = None,
) -> list[EnvScore]:
    """Evaluate ``policy`` (the teacher's view with ``with_privileged``) on every entry;
    ``episodes`` and ``max_turns`` override the entries' own when given."""
    scores = []
    for entry in entries:
        start = time.perf_counter()
        provider = Tolerant(build_provider(entry.provider, **entry.provider_kwargs))
        result = evaluate(
            policy,
            entry.env,
            prompt_for(entry.env),
            episodes=episodes or entry.episodes,
            env_kwargs=dict(entry.env_kwargs),
            split="test",
            max_turns=max_turns or entry.max_turns,
            max_new_tokens=entry.max_new_tokens,
            provider=provider if with_privileged else None,
        )
        scores.append(score_of(entry, result, time.perf_counter() - start))
        if progress is not None:
            progress(scores[-1])
    return scores


def score_of(entry: SuiteEntry, result: EvalResult, seconds: float) -> EnvScore:
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


def table(scores: Sequence[EnvScore]) -> str:
    """A Markdown table: one row per environment, then the suite average."""
    lines = [
        "| environment | metric | score ± s.e. | episodes | invalid rate | avg turns "
        "| tokens/episode | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.name} | {s.metric} | {s.score:.3f} ± {s.stderr:.3f} | {s.episodes} | "
            f"{s.invalid_rate:.3f} | {s.mean_turns:.2f} | {s.tokens_per_episode:.1f} | "
            f"{s.seconds:.0f} |"
        )
    mean, err = average(scores)
    lines.append(f"| **average** | | **{mean:.3f} ± {err:.3f}** | | | | | |")
    return "\n".join(lines)


class Tolerant:
    """A provider that gives the plain student context on turns whose environment supplied
    no privileged information (a bot that gave up, a page with no target), so that a
    teacher evaluation never stops on one missing key."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.keys = getattr(provider, "keys", None)

    def __call__(
        self, messages: Sequence[Message], privileged: Mapping[str, Any], **kwargs: Any
    ) -> TeacherContext:
        """The provider's context, or the student's own where a key is missing."""
        try:
            return self.provider(messages, privileged, **kwargs)
        except MissingPrivilegedKey:
            prefix = kwargs.get("assistant_prefix", "")
            return TeacherContext(list(messages), prefix, "none")
