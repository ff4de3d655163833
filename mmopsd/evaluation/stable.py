"""The environments of a batched evaluation: made when an episode needs one, reused by the
next episode of the same environment, closed when no episode of theirs is left."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from typing import Any

import gymnasium as gym

from mmopsd.rollout import concurrent, make_envs


def env_key(env_id: str, env_kwargs: dict[str, Any]) -> tuple[str, str]:
    """The key of one environment setting (its id and its keyword arguments)."""
    return env_id, json.dumps(env_kwargs, sort_keys=True, default=str)


class EnvStable:
    """Lends environments to :func:`~mmopsd.rollout.play` by :func:`env_key`.

    ``keys`` lists the key of every episode to be played (one entry per episode), so an
    environment is closed as soon as no episode of its key is left (a browser holds memory).
    Use as a context manager: leaving it closes every environment still open.
    """

    def __init__(self, keys: Iterable[Hashable]) -> None:
        self.waiting: Counter[Hashable] = Counter(keys)
        self.free: dict[Hashable, list[gym.Env]] = defaultdict(list)
        self.lent: list[gym.Env] = []
        self.lock = threading.Lock()  # episodes start in threads
        self.kinds: dict[Hashable, bool] = {}

    def lend(self, key: Hashable) -> gym.Env:
        """A free environment of ``key``, made when there is none."""
        with self.lock:
            self.waiting[key] -= 1
            env = self.free[key].pop() if self.free[key] else None
        if env is None:
            env = self._make(key)
        with self.lock:
            self.lent.append(env)
        return env

    def concurrent(self, key: Hashable) -> bool:
        """Whether environments of ``key`` may start and step in threads; the first of a key
        is made here (in this thread) to find out, and kept for the next episode."""
        if key not in self.kinds:
            env = self._make(key)
            self.kinds[key] = concurrent(env)
            self.free[key].append(env)
        return self.kinds[key]

    def take_back(self, key: Hashable, env: gym.Env) -> None:
        """Keep ``env`` for the next episode of ``key``, or close it if none is left."""
        with self.lock:
            self.lent.remove(env)
            keep = self.waiting[key] > 0
            if keep:
                self.free[key].append(env)
        if not keep:
            env.close()

    @staticmethod
    def _make(key: Hashable) -> gym.Env:
        env_id, kwargs = key  # type: ignore[misc]
        return make_envs(env_id, 1, **json.loads(kwargs))[0]

    def close(self) -> None:
        """Close every environment, lent or free."""
        for env in [*self.lent, *(e for envs in self.free.values() for e in envs)]:
            env.close()
        self.lent, self.free = [], defaultdict(list)

    def __enter__(self) -> EnvStable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
