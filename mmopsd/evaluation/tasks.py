"""What to evaluate: one :class:`EvalTask` type for suites, a config's ``ood`` and ``retain``
lists and the command line's defaults.

``ood`` (out-of-distribution settings of the task) and ``retain`` (environments never trained
on, to measure forgetting) are lists of mappings ``{env, env_kwargs, split, episodes,
max_turns, name}`` in a config; every key is optional (``env`` defaults to the first trained
task's environment and ``env_kwargs`` to its arguments). They run before training and after the last
step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmopsd.errors import ConfigError

KEYS = ("env", "env_kwargs", "split", "episodes", "max_turns", "name")


@dataclass(frozen=True)
class EvalTask:
    """One evaluated environment setting.

    Attributes:
        env: the registered id.
        episodes: held-out episodes.
        max_turns: turn cap per episode.
        max_new_tokens: response length cap.
        env_kwargs: keyword arguments of the environment.
        split: the split evaluated.
        provider: the provider of the teacher's view (when the teacher is evaluated).
        provider_kwargs: its options.
        name: the column or row name (default: the id without ``mmopsd/`` and the version).
    """

    env: str = "mmopsd/KeyDoor-v0"
    episodes: int = 64
    max_turns: int = 1
    max_new_tokens: int = 4
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    split: str = "test"
    provider: str = "hint"
    provider_kwargs: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            short = self.env.removeprefix("mmopsd/").rsplit("-v", 1)[0]
            object.__setattr__(self, "name", short)


def extra_tasks(config: Any, kind: str) -> list[EvalTask]:
    """The ``ood`` or ``retain`` evaluations (``kind``) of ``config`` (a
    :class:`~mmopsd.config.TrainConfig`), its values filled in where an entry leaves them
    out."""
    entries = {"ood": config.evaluation.ood, "retain": config.evaluation.retain}[kind]
    return parse(kind, entries, config)


def parse(kind: str, entries: list[Any], config: Any) -> list[EvalTask]:
    """The ``ood`` or ``retain`` entries of ``config`` (``kind`` names the field in errors),
    with the trained config's values filled in."""
    out = [_entry(kind, i, entry, config) for i, entry in enumerate(entries)]
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{kind} has two entries named alike ({names}); give each a name")
    return out


def _entry(kind: str, i: int, entry: Any, config: Any) -> EvalTask:
    if not isinstance(entry, dict):
        raise ConfigError(f"{kind}[{i}] must be a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{kind}[{i}] has {', '.join(map(repr, unknown))}; its keys are {', '.join(KEYS)}"
        )
    first = config.tasks[0]
    env = entry.get("env", first.env)
    kwargs = entry.get("env_kwargs", dict(first.env_kwargs) if env == first.env else {})
    split = entry.get("split", config.evaluation.split)
    episodes = entry.get("episodes", config.evaluation.episodes)
    turns = entry.get("max_turns", config.rollout.max_turns)
    if not isinstance(episodes, int) or episodes < 1 or not isinstance(turns, int) or turns < 1:
        raise ConfigError(f"{kind}[{i}]: episodes and max_turns must be integers >= 1")
    return EvalTask(
        env=env,
        episodes=episodes,
        max_turns=turns,
        max_new_tokens=config.rollout.max_new_tokens,
        env_kwargs=dict(kwargs),
        split=split,
        name=entry.get("name") or _name(env, kwargs, split),
    )


def _name(env: str, kwargs: dict[str, Any], split: str) -> str:
    extra = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    short = env.removeprefix("mmopsd/")
    return f"{short}[{extra}]:{split}" if extra else f"{short}:{split}"
