"""One registration per environment: its gymnasium id and lazy entry point, the prompt agents
use on it and the benchmark suites that play it, declared together by :func:`register`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from mmopsd.agents.prompting import PROMPTS, PromptSpec


@dataclass(frozen=True)
class SuiteEntry:
    """How a benchmark suite plays an environment.

    Attributes:
        episodes: held-out episodes.
        max_turns: turn cap per episode.
        max_new_tokens: response length cap.
        provider: the provider of the teacher's view (when the teacher is evaluated).
        provider_kwargs: its options.
    """

    episodes: int = 8
    max_turns: int = 1
    max_new_tokens: int = 4
    provider: str = "hint"
    provider_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    """A registered environment.

    Attributes:
        env_id: the gymnasium id (``namespace/Name-vN``).
        entry_point: ``"module:callable"``, imported when the environment is first made.
        kwargs: fixed keyword arguments of the entry point.
        prompt: how agents talk to it (None: the default prompt, which lists the actions the
            environment offers).
        suites: the suites that play it, by suite name.
    """

    env_id: str
    entry_point: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    prompt: PromptSpec | None = None
    suites: Mapping[str, SuiteEntry] = field(default_factory=dict)


REGISTRATIONS: dict[str, Registration] = {}


def register(
    env_id: str,
    entry_point: str,
    *,
    kwargs: Mapping[str, Any] | None = None,
    prompt: PromptSpec | None = None,
    suites: Mapping[str, SuiteEntry] | None = None,
) -> Registration:
    """Register an environment with gymnasium (lazy entry point), its prompt and its suite
    memberships, in one call; registering the same id again changes nothing."""
    if env_id in REGISTRATIONS:
        return REGISTRATIONS[env_id]
    entry = Registration(env_id, entry_point, dict(kwargs or {}), prompt, dict(suites or {}))
    REGISTRATIONS[env_id] = entry
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, kwargs=dict(entry.kwargs))
    if prompt is not None and env_id not in PROMPTS:
        PROMPTS.add(env_id, prompt)
    return entry


def unregister(env_id: str) -> None:
    """Forget a registration made by :func:`register` (its gymnasium id and its prompt)."""
    REGISTRATIONS.pop(env_id, None)
    gym.registry.pop(env_id, None)
    PROMPTS.remove(env_id)


def suite(name: str) -> list[Registration]:
    """The registrations a suite plays, in registration order."""
    return [r for r in REGISTRATIONS.values() if name in r.suites]
