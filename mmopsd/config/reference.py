"""The configuration reference, generated from the sections' own field documentation:
``python -m mmopsd.config.reference`` prints it, ``--write FILE`` replaces the part of FILE
between its markers (``docs/configuration.md``; a test keeps that file current)."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

import yaml

from mmopsd.config.sections import TaskConfig
from mmopsd.config.train_config import TrainConfig

START, END = "<!-- reference: start -->", "<!-- reference: end -->"


def reference() -> str:
    """Markdown: per section its purpose, then one row per field (type, default, meaning)."""
    hints = typing.get_type_hints(TrainConfig)
    parts = [
        _table("imports", "Modules to import first (a key of its own).", [_top_field("imports")])
    ]
    for f in dataclasses.fields(TrainConfig):
        cls = TaskConfig if f.name == "tasks" else hints[f.name]
        if not dataclasses.is_dataclass(cls):
            continue
        key = "tasks[]" if f.name == "tasks" else f.name
        rows = [_row(g, typing.get_type_hints(cls)[g.name]) for g in dataclasses.fields(cls)]
        parts.append(_table(key, _doc(cls), rows))
    return "\n".join(parts)


def _top_field(name: str) -> str:
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return _row(f, typing.get_type_hints(TrainConfig)[name])


def _table(key: str, doc: str, rows: list[str]) -> str:
    head = f"### `{key}`\n\n{doc}\n\n| field | type | default | meaning |\n|---|---|---|---|\n"
    return head + "\n".join(rows) + "\n"


def _row(f: dataclasses.Field, hint: Any) -> str:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = dataclasses.MISSING
    if default is dataclasses.MISSING:
        shown = "required"
    else:
        shown = "unset" if default is None else f"`{_yaml(default)}`"
    kind = str(hint) if typing.get_args(hint) else getattr(hint, "__name__", str(hint))
    kind = kind.replace("typing.", "").replace(" | None", " or unset")
    return f"| `{f.name}` | {kind} | {shown} | {f.metadata.get('doc', '')} |"


def _yaml(value: Any) -> str:
    """``value`` as YAML writes it on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def write(path: Path) -> bool:
    """Replace the reference between the markers of ``path``; whether it changed."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{reference()}{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        print("changed" if write(Path(sys.argv[2])) else "up to date")
    else:
        print(reference())
