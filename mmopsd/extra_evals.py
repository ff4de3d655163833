"""Evaluations beside the held-out split: ``ood`` (out-of-distribution settings of the task)
and ``retain`` (environments never trained on, to measure forgetting). Each entry of the
config's lists is a mapping ``{env, env_kwargs, split, episodes, max_turns, name}``; every
key is optional (``env`` defaults to the trained environment and ``env_kwargs`` to its
arguments). They run before training and after the last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmopsd.errors import ConfigError

KEYS = ("env", "env_kwargs", "split", "episodes", "max_turns", "name")


@dataclass(frozen=True)
class ExtraEval:
    """One extra evaluation, with the trained config's values filled in."""

    name: str
    env: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    episodes: int = 64
    max_turns: int = 1


def parse(kind: str, entries: list[Any], config: Any) -> list[ExtraEval]:
    """The ``ood`` or ``retain`` entries of ``config`` (``kind`` names the field in errors)."""
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{kind}[{i}] must be a mapping with keys {', '.join(KEYS)}")
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise ConfigError(
                f"{kind}[{i}] has {', '.join(map(repr, unknown))}; its keys are {', '.join(KEYS)}"
            )
        env = entry.get("env", config.env)
        same = env == config.env
        kwargs = entry.get("env_kwargs", dict(config.env_kwargs) if same else {})
        split = entry.get("split", config.eval_split)
        name = entry.get("name") or _name(env, kwargs, split)
        episodes = entry.get("episodes", config.eval_episodes)
        turns = entry.get("max_turns", config.max_turns)
        if not isinstance(episodes, int) or episodes < 1 or not isinstance(turns, int) or turns < 1:
            raise ConfigError(f"{kind}[{i}]: episodes and max_turns must be integers >= 1")
        out.append(ExtraEval(name, env, dict(kwargs), split, episodes, turns))
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{kind} has two entries named alike ({names}); give each a name")
    return out


def _name(env: str, kwargs: dict[str, Any], split: str) -> str:
    extra = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    return (
        f"{env.removeprefix('mmopsd/')}[{extra}]:{split}"
        if extra
        else f"{env.removeprefix('mmopsd/')}:{split}"
    )
