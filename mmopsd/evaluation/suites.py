"""Named lists of benchmark environments, evaluated together: ``mmopsd eval --suite NAME``.

A suite is a tuple of :class:`~mmopsd.evaluation.tasks.EvalTask` (an id with its episode
count, turn cap and the provider that gives the teacher its privileged view). Results per
environment (:class:`~mmopsd.evaluation.scores.EnvScore`) carry BALROG's metric (success, or
progression where the benchmark has no success, with its standard error), the invalid-action
rate, mean turns, tokens per episode and time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from mmopsd.agents.prompting import prompt_for
from mmopsd.envs import suite
from mmopsd.evaluation.core import EvalPlan, EvalResult, evaluate_all
from mmopsd.evaluation.scores import EnvScore, score_of
from mmopsd.evaluation.tasks import EvalTask
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import MissingPrivilegedKey, Provider, build_provider
from mmopsd.registry import Registry
from mmopsd.types import Message, TeacherContext

SUITES: Registry[tuple[EvalTask, ...]] = Registry("suite")


def _suite(name: str) -> tuple[EvalTask, ...]:
    """The tasks of a suite, from the environments' registrations."""
    return tuple(
        EvalTask(
            r.env_id,
            episodes=r.suites[name].episodes,
            max_turns=r.suites[name].max_turns,
            max_new_tokens=r.suites[name].max_new_tokens,
            provider=r.suites[name].provider,
            provider_kwargs=dict(r.suites[name].provider_kwargs),
        )
        for r in suite(name)
    )


GUI = _suite("gui")
EMBODIED = _suite("embodied")
SUITES.add("gui", GUI)
SUITES.add("embodied", EMBODIED)
SUITES.add("all", GUI + EMBODIED)


def run_suite(
    policy: Policy,
    entries: Sequence[EvalTask],
    *,
    with_privileged: bool = False,
    episodes: int | None = None,
    max_turns: int | None = None,
    progress: Any = None,
    batch_size: int | None = None,
) -> list[EnvScore]:
    """Evaluate ``policy`` (the teacher's view with ``with_privileged``) on every entry;
    ``episodes`` and ``max_turns`` override the entries' own when given.

    All entries are played together (:func:`~mmopsd.evaluation.core.evaluate_all`): one
    batched generation per turn over the live episodes of every environment, at most
    ``batch_size`` at a time (None: 32, on a CPU at most 8 in browsers). An entry's ``seconds`` run
    from the start to its last episode's end; ``progress(score)`` is called as each entry
    finishes.
    """
    plans = [
        EvalPlan(
            entry.env,
            prompt_for(entry.env),
            episodes or entry.episodes,
            dict(entry.env_kwargs),
            entry.split,
            max_turns or entry.max_turns,
            entry.max_new_tokens,
            Tolerant(build_provider(entry.provider, **entry.provider_kwargs))
            if with_privileged
            else None,
        )
        for entry in entries
    ]
    start = time.perf_counter()
    scores: dict[int, EnvScore] = {}

    def finished(n: int, result: EvalResult) -> None:
        scores[n] = score_of(entries[n], result, time.perf_counter() - start)
        if progress is not None:
            progress(scores[n])

    evaluate_all(policy, plans, batch_size=batch_size, on_result=finished)
    return [scores[n] for n in range(len(entries))]


class Tolerant(Provider):
    """A provider that gives the plain student context on turns whose environment supplied
    no privileged information (a bot that gave up, a page with no target), so that a
    teacher evaluation never stops on one missing key."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name

    @property
    def keys(self) -> Sequence[str] | None:
        """The wrapped provider's keys."""
        return self.provider.keys

    def __call__(
        self, messages: Sequence[Message], privileged: Mapping[str, Any], **kwargs: Any
    ) -> TeacherContext:
        """The provider's context, or the student's own where a key is missing."""
        try:
            return self.provider(messages, privileged, **kwargs)
        except MissingPrivilegedKey:
            prefix = kwargs.get("assistant_prefix", "")
            return TeacherContext(list(messages), prefix, "none")
