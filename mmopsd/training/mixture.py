"""Training on a mixture of environments: the tasks of a run, the draw of each episode's
task, the environments they play in, and the provider that serves each task's turns.

A config's ``tasks`` list names the mixture; each entry is an environment with its keyword
arguments, its weight, its provider and its history window (an entry leaves out what the run
sets once). A run without ``tasks`` trains on its ``env`` alone: a mixture of one.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from mmopsd.agents.history import check_window
from mmopsd.config import TrainConfig
from mmopsd.errors import ConfigError
from mmopsd.privileged.base import Episode, Provider
from mmopsd.rollout import concurrent, make_envs
from mmopsd.types import Message, TeacherContext, Trajectory

ENTRY_KEYS = ("env", "env_kwargs", "weight", "provider", "provider_kwargs", "history", "name")


@dataclass(frozen=True)
class TrainTask:
    """One environment of a run's training mixture."""

    name: str
    env: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    provider: str = "hint"
    provider_kwargs: dict[str, Any] = field(default_factory=dict)
    history: int | None = None


def parse_tasks(
    entries: Sequence[Mapping[str, Any]],
    *,
    env: str,
    env_kwargs: Mapping[str, Any],
    provider: str,
    provider_kwargs: Mapping[str, Any],
    history: int | None,
) -> list[TrainTask]:
    """The training tasks of ``entries`` (a config's ``tasks``), the run's own values filling
    what an entry leaves out; no entries: the run's ``env`` alone."""
    if not entries:
        return [TrainTask(_name(env, env_kwargs), env, dict(env_kwargs), 1.0, provider,
                          dict(provider_kwargs), history)]  # fmt: skip
    tasks = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "env" not in entry:
            raise ConfigError(f"tasks[{n}] must be a mapping with an 'env', got {entry!r}")
        unknown = set(entry) - set(ENTRY_KEYS)
        if unknown:
            raise ConfigError(
                f"tasks[{n}] has unknown keys {sorted(unknown)}; allowed: {', '.join(ENTRY_KEYS)}"
            )
        weight = float(entry.get("weight", 1.0))
        if not weight > 0:
            raise ConfigError(f"tasks[{n}] weight must be > 0, got {weight}")
        kwargs = dict(entry.get("env_kwargs", {}))
        named = entry.get("provider") is not None
        options = entry.get("provider_kwargs", {} if named else provider_kwargs)
        tasks.append(
            TrainTask(
                name=str(entry.get("name") or _name(entry["env"], kwargs)),
                env=str(entry["env"]),
                env_kwargs=kwargs,
                weight=weight,
                provider=str(entry["provider"]) if named else provider,
                provider_kwargs=dict(options),
                history=entry.get("history", history),
            )
        )
    names = [t.name for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"tasks named twice: {twice}; give each a 'name'")
    return tasks


def train_tasks(config: TrainConfig) -> list[TrainTask]:
    """The training mixture of ``config``: its ``tasks`` list, or its ``env`` alone, each
    entry's history window checked."""
    tasks = parse_tasks(
        config.tasks,
        env=config.env,
        env_kwargs=config.env_kwargs,
        provider=config.provider,
        provider_kwargs=config.provider_kwargs,
        history=config.history,
    )
    for task in tasks:
        check_window(task.history, f"history of task {task.name}")
    return tasks


def _name(env: str, kwargs: Mapping[str, Any]) -> str:
    base = env.split("/", 1)[-1]
    return base + (json.dumps(dict(kwargs), sort_keys=True) if kwargs else "")


def draw(tasks: Sequence[TrainTask], groups: int, *, seed: int, step: int) -> list[int]:
    """The task of each of a step's ``groups`` (index into ``tasks``), drawn by weight.

    The draw depends on the run's seed and the step alone, so every process of a
    data-parallel run draws the same and a resumed run draws what the lost one would have."""
    if len(tasks) == 1:
        return [0] * groups
    weights = np.asarray([t.weight for t in tasks], dtype=float)
    rng = np.random.default_rng([seed, step])
    return rng.choice(len(tasks), size=groups, p=weights / weights.sum()).tolist()


class TaskEnvs:
    """The training environments of a run, by task index: made when an episode needs one,
    kept for the next step (a browser costs seconds to start), closed with :meth:`close`.
    At most ``keep`` are kept in all (a step's episodes): a task drawn more often than usual
    in one step does not hold its extra environments, each with a browser, for the rest of
    the run (a closed MiniWoB++ environment's browser goes back to the pool, where the next
    environment of any task takes it)."""

    def __init__(self, tasks: Sequence[TrainTask], split: str, keep: int | None = None) -> None:
        self.tasks, self.split, self.keep = list(tasks), split, keep
        self.free: dict[int, list[gym.Env]] = defaultdict(list)
        self.every: list[gym.Env] = []
        self.kinds: dict[int, bool] = {}
        self.lock = threading.Lock()  # episodes start in threads

    def prepare(self, task: int, count: int) -> None:
        """Have at least ``count`` free environments of ``task`` (made in threads when the
        environment allows it)."""
        missing = count - len(self.free[task])
        if missing > 0:
            t = self.tasks[task]
            made = make_envs(t.env, missing, split=self.split, **t.env_kwargs)
            with self.lock:
                self.free[task] += made
                self.every += made
            self.kinds.setdefault(task, concurrent(made[0]))

    def lend(self, key: Hashable) -> gym.Env:
        """A free environment of task ``key``."""
        self.prepare(int(key), 1)  # type: ignore[call-overload]
        with self.lock:
            return self.free[int(key)].pop()  # type: ignore[call-overload]

    def take_back(self, key: Hashable, env: gym.Env) -> None:
        """``env`` is free for the next episode of its task (closed instead when ``keep``
        environments are kept already)."""
        with self.lock:
            full = self.keep is not None and sum(map(len, self.free.values())) >= self.keep
            if not full:
                self.free[int(key)].append(env)  # type: ignore[call-overload]
                return
            self.every.remove(env)
        env.close()

    def concurrent(self, key: Hashable) -> bool:
        """Whether task ``key``'s environments may start and step in threads."""
        self.prepare(int(key), 1)  # type: ignore[call-overload]
        return self.kinds[int(key)]  # type: ignore[call-overload]

    def close(self) -> None:
        """Close every environment."""
        for env in self.every:
            env.close()
        self.every, self.free = [], defaultdict(list)


class ByTask(Provider):
    """The providers of a mixture's tasks as one: a turn is served by its trajectory's
    task's provider."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self.providers = dict(providers)
        self.name = "+".join(sorted({p.name for p in self.providers.values()}))
        self.static = all(p.static for p in self.providers.values())

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The view of this turn's task's provider."""
        if episode is None or episode.trajectory.task not in self.providers:
            task = None if episode is None else episode.trajectory.task
            raise ValueError(f"no provider for task {task!r}: known {sorted(self.providers)}")
        provider = self.providers[episode.trajectory.task]
        return provider(messages, privileged, assistant_prefix=assistant_prefix, episode=episode)

    @property
    def keys(self) -> Sequence[str] | None:
        """Every task's keys (None, every key, if any task's provider says None)."""
        out: list[str] = []
        for p in self.providers.values():
            if p.keys is None:
                return None
            out += [k for k in p.keys if k not in out]
        return out

    def bind(self, policy: Any, out_dir: Any = None) -> None:
        """Bind every task's provider."""
        for p in self.providers.values():
            p.bind(policy, out_dir)

    def reset(self) -> None:
        """Reset every task's provider."""
        for p in self.providers.values():
            p.reset()

    def observe(self, trajectories: Sequence[Trajectory], step: int) -> None:
        """Each task's provider sees its own task's trajectories."""
        for name, p in self.providers.items():
            p.observe([t for t in trajectories if t.task == name], step)
