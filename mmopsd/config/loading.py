"""Loading a :class:`~mmopsd.config.TrainConfig`: a YAML file, ``key=value`` overrides
(dotted paths into the sections), plain data. Every key and value is checked; a key of the
flat form names its new place (:mod:`mmopsd.config.migration`)."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mmopsd.config.fields import coerce
from mmopsd.config.migration import moved_error, moved_key
from mmopsd.config.sections import DEFAULT_ENV, TaskConfig
from mmopsd.config.train_config import TrainConfig
from mmopsd.errors import ConfigError


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file and ``key=value`` overrides.

    Values of overrides are parsed as YAML (``optimizer.steps=10``, ``model.lora=true``,
    ``method.loss_kwargs={top_k: 20}``); each dot goes one level down
    (``method.loss_kwargs.top_k=20``, ``tasks.0.env=mmopsd/Sokoban-v0``).
    """
    return from_dict(load_data(path, overrides))


def load_data(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The data a YAML file and ``key=value`` overrides set, before any checking (see
    :func:`load_config`)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        loaded = parse_yaml(_read_text(path), str(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} must hold a mapping of config sections, got {type(loaded).__name__}"
            )
        flat = next((k for k, v in loaded.items() if moved_key(k, v)), None)
        if flat is not None:
            raise ConfigError(f"{path}: {moved_error(flat)}")
        data.update(loaded)
    return apply_overrides(data, overrides or [])


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key=value`` (a YAML value; each dot of the key one level down, a
    number indexing a list) set in place; returns ``data``."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key=value")
        key = key.strip()
        value = parse_yaml(raw, f"the value of --set {key}")
        *parents, last = key.split(".")
        if not parents and moved_key(last, value):
            raise moved_error(last)
        node: Any = data
        for n, part in enumerate(parents):
            node = _child(node, part, ".".join(parents[: n + 1]), key)
        _put(node, last, value, key)
    return data


def _child(node: Any, part: str, where: str, key: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where, key)]
    if not isinstance(node, dict):
        raise ConfigError(f"{where} is not a mapping, so {key} cannot be set")
    if part == "tasks" and "tasks" not in node:
        node["tasks"] = [{"env": DEFAULT_ENV}]  # the default task, to set one of its fields
    return node.setdefault(part, {})


def _put(node: Any, last: str, value: Any, key: str) -> None:
    if isinstance(node, list):
        node[_index(node, last, key, key)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{key.rsplit('.', 1)[0]} is not a mapping, so {key} cannot be set")


def _index(node: list, part: str, where: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(
            f"{key}: {where.rsplit('.', 1)[0]} is a list of {len(node)}; index it 0 to "
            f"{len(node) - 1}"
        )
    return int(part)


def merge(data: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of config ``data`` with ``changes`` merged in, section by section: a mapping
    merges into the mapping it meets, anything else (a list, a value) replaces it
    (``merge(base, {"optimizer": {"lr": 1e-4}})`` keeps the base's other optimizer fields)."""
    out = copy.deepcopy(dict(data))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not a UTF-8 text file ({err.reason}); pass a YAML file"
        ) from err
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err


def parse_yaml(text: str, where: str) -> Any:
    """YAML text, or a :class:`ConfigError` naming the line and column of the mistake."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}") from err


def from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build and check a :class:`TrainConfig` from plain data: each section a mapping of
    its fields (a section left out keeps its defaults); an unknown key suggests the closest,
    a key of the flat form names its new place."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    hints = typing.get_type_hints(TrainConfig)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if moved_key(key, value):
            raise moved_error(key)
        if key not in hints:
            raise _unknown(key, hints, "config section")
        if key == "tasks":
            values[key] = _tasks(value)
        elif dataclasses.is_dataclass(hints[key]):
            values[key] = section(hints[key], key, value)
        else:
            values[key] = coerce(key, value, hints[key])
    return TrainConfig(**values)


def run_config_near(path: Path) -> tuple[Path, TrainConfig] | None:
    """The ``config.yaml`` of the run ``path`` belongs to (``path`` itself, or one or two
    folders up: a run, its ``checkpoints/`` or one checkpoint), as ``(run folder, config)``;
    a run written before the config had sections is migrated. None where there is none."""
    from mmopsd.config.migration import migrate

    for candidate in (path, *path.parents[:2]):
        file = candidate / "config.yaml"
        if file.is_file():
            data = parse_yaml(file.read_text(errors="replace"), str(file)) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{file} holds no mapping of config sections")
            return candidate, from_dict(migrate(data))
    return None


def section(cls: Any, where: str, value: Any) -> Any:
    """The section ``cls`` from the mapping ``value`` (``where`` names it in errors)."""
    if value is None:
        return cls()
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where} must be a mapping of its fields ({', '.join(names)}), got {value!r}"
        )
    hints = typing.get_type_hints(cls)
    clean = {}
    for key, item in value.items():
        if key not in names:
            raise _unknown(key, names, f"field of {where}")
        clean[key] = coerce(f"{where}.{key}", item, hints[key])
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in clean:
            raise ConfigError(f"{where} needs {f.name}: {f.metadata.get('doc', '')}")
    return cls(**clean)


def _tasks(value: Any) -> list[TaskConfig]:
    if not isinstance(value, list):
        raise ConfigError(
            f"tasks must be a list of tasks, e.g. [{{env: mmopsd/KeyDoor-v0}}], got {value!r}"
        )
    out = []
    for n, entry in enumerate(value):
        try:
            out.append(section(TaskConfig, f"tasks[{n}]", entry))
        except ConfigError as err:
            raise ConfigError(str(err).replace("tasks[].", f"tasks[{n}].")) from None
    return out


def _unknown(key: str, names: Any, what: str) -> ConfigError:
    close = difflib.get_close_matches(str(key), list(names), n=1)
    tip = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {what} {key!r}{tip}")


def import_modules(names: list[str]) -> None:
    """Import each module (they register environments, providers, losses, ...)."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(
                f"cannot import {name!r} (from imports): {err}; is its package installed and "
                "on the Python path?"
            ) from err
