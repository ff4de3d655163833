"""Configs written before the config had sections: where each flat key went, a one-line
error naming it, and :func:`migrate`, the stated rewrite (``mmopsd config migrate FILE``).

A flat config's ``env``, ``env_kwargs``, ``provider``, ``provider_kwargs`` and ``history``
become its one task (``tasks: [{env: ..., provider: ...}]``); a flat ``tasks`` list keeps its
entries, each taking the run-wide provider and history it left out, as it did."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mmopsd.errors import ConfigError

_SECTIONS: dict[str, tuple[str, ...]] = {
    "model": ("dtype", "device", "lora", "lora_r", "lora_alpha", "lora_targets", "freeze_vision"),
    "method": (
        "actor", "teacher_share", "success_only", "distill_coef", "loss", "loss_kwargs",
        "token_weighting", "weighting_kwargs", "turn_weighting", "turn_weighting_kwargs",
        "curriculum_every", "curriculum_start", "rl", "rl_coef", "rl_advantage", "group_size",
        "ppo_epochs", "clip_eps", "kl_coef", "importance_cap",
    ),
    "rollout": ("max_turns", "max_new_tokens", "temperature", "top_p", "engine", "engine_kwargs"),
    "optimizer": (
        "steps", "batch_size", "micro_batch_size", "lr", "weight_decay", "warmup_steps",
        "max_grad_norm",
    ),
    "evaluation": ("ood", "retain"),
    "run": (
        "out_dir", "seed", "resume", "save_every", "keep_checkpoints", "parallel", "dist_timeout",
    ),
}  # fmt: skip
TASK_KEYS = ("env", "env_kwargs", "provider", "provider_kwargs", "history")
TASK_ORDER = ("env", "env_kwargs", "weight", "provider", "provider_kwargs", "history", "name")

# flat key -> its path in the sectioned config ("tasks[].x": a key of every task)
MOVED: dict[str, str] = {
    **{key: f"{section}.{key}" for section, keys in _SECTIONS.items() for key in keys},
    **{key: f"tasks[].{key}" for key in TASK_KEYS},
    "method": "method.name", "model": "model.name", "teacher": "teacher.update",
    "teacher_kwargs": "teacher.update_kwargs", "train_split": "rollout.split",
    "save_rollouts": "rollout.save", "eval_split": "evaluation.split",
    "eval_every": "evaluation.every", "eval_episodes": "evaluation.episodes",
    "eval_teacher": "evaluation.teacher", "eval_batch_size": "evaluation.batch_size",
    "eval_cache": "evaluation.cache",
}  # fmt: skip
KEPT = ("imports", "tasks")
ORDER = (
    "imports",
    "model",
    "tasks",
    "method",
    "teacher",
    "rollout",
    "optimizer",
    "evaluation",
    "run",
)  # top-level keys that mean the same in both forms


def moved_key(key: str, value: Any = None) -> str | None:
    """The new path of flat key ``key`` when ``value`` is its flat form (a section name
    holding a plain value: ``model: smollm2-135m``), else None."""
    if key in KEPT or key not in MOVED:
        return None
    if "." in MOVED[key] and MOVED[key].split(".")[0] == key and isinstance(value, Mapping):
        return None  # a section given as a section
    return MOVED[key]


def moved_error(key: str) -> ConfigError:
    """The one-line error of a flat key."""
    return ConfigError(
        f"config key {key!r} is now {MOVED[key]} (the config has sections); "
        "`mmopsd config migrate FILE` rewrites a flat config"
    )


def is_flat(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` uses a key of the flat form."""
    return any(moved_key(k, v) for k, v in data.items())


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """The sectioned form of a flat config's ``data`` (a sectioned one comes back as it
    is); every value is kept and nothing is added."""
    data = copy.deepcopy(dict(data))
    if not is_flat(data):
        return data
    out: dict[str, Any] = {"imports": data.pop("imports")} if "imports" in data else {}
    tasks = _tasks(data)
    for key, value in data.items():
        if key in TASK_KEYS or key == "tasks":
            continue
        if key not in MOVED:
            raise ConfigError(f"unknown config field {key!r} in a flat config; remove it")
        section, name = MOVED[key].split(".")
        out.setdefault(section, {})[name] = value
    if tasks:
        out["tasks"] = tasks
    return {key: out[key] for key in ORDER if key in out}


def _tasks(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A flat config's tasks: its ``tasks`` entries with the run-wide provider and history
    filled in as the flat form did, or its ``env`` alone (none if it names no task key)."""
    shared = {k: data[k] for k in ("provider", "provider_kwargs", "history") if k in data}
    if not data.get("tasks"):
        one = {k: data[k] for k in TASK_ORDER if k in data}
        return [one] if one else []
    tasks = []
    for entry in data["tasks"]:
        entry = dict(entry)
        named = entry.get("provider") is not None  # a named provider took no shared options
        fill = {k: v for k, v in shared.items() if not (named and k == "provider_kwargs")}
        task = {**fill, **entry}
        tasks.append({k: task[k] for k in TASK_ORDER if k in task})
    return tasks
