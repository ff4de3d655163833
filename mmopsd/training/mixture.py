"""Training on a mixture of environments: the tasks of a run, the draw of each episode's
task, the environments they play in, and the provider that serves each task's turns.

A config's ``tasks`` list names the mixture; each entry is an environment with its keyword
arguments, its weight, its provider and its history window
(:class:`~mmopsd.config.TaskConfig`). A run on one environment is a mixture of one: the same
code path.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from mmopsd.agents.history import check_window
from mmopsd.config import TaskConfig, TrainConfig
from mmopsd.privileged.base import Episode, Provider
from mmopsd.rollout import concurrent, make_envs
from mmopsd.types import Message, TeacherContext, Trajectory

TrainTask = TaskConfig  # a task of the training mixture, as the config gives it


def train_tasks(config: TrainConfig) -> list[TaskConfig]:
    """The training mixture of ``config`` (a run on one environment is a mixture of one),
    each task's history window checked."""
    for task in config.tasks:
        check_window(task.history, f"history of task {task.name}")
    return list(config.tasks)


def draw(tasks: Sequence[TrainTask], groups: int, *, seed: int, step: int) -> list[int]:
    """The task of each of a step's ``groups`` (index into ``tasks``), drawn by weight.

    The draw depends on the run's seed and the step alone, so every process of a
    data-parallel run draws the same and a resumed run draws what the lost one would have."""
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

    def prepare_step(self, count: int) -> None:
        """Have the environments a step of ``count`` episodes is expected to need: each task
        its share by weight, rounded down (made ahead, in threads where allowed; a task drawn
        more often than its share makes the rest when its episodes start)."""
        total = sum(t.weight for t in self.tasks)
        for n, task in enumerate(self.tasks):
            self.prepare(n, int(count * task.weight / total))

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
