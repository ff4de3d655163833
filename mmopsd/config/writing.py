"""Writing a config: YAML a person reads (``config.yaml`` of a run, ``mmopsd config migrate``,
``mmopsd config show``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


def dump(data: Mapping[str, Any]) -> str:
    """YAML of a config's ``data``: sections and tasks as blocks, keys in their order, the
    short mappings and lists of plain values inside them on one line, no anchors."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def mapping(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
        flow = len(value) <= 4 and all(_plain(v) for v in value.values())
        return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)

    def block(dumper: yaml.SafeDumper, value: _Block) -> yaml.Node:
        return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=False)

    def sequence(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
        flow = all(_plain(v) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = '"' if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(_Block, block)
    Dumper.add_representer(list, sequence)
    top = {
        key: _Block(value) if isinstance(value, dict)
        else [_Block(v) if isinstance(v, dict) else v for v in value] if key == "tasks"
        else value
        for key, value in data.items()
    }  # fmt: skip
    return yaml.dump(top, Dumper=Dumper, sort_keys=False, width=96, allow_unicode=True)


class _Block(dict):
    """A mapping written as a block."""


def _plain(value: Any) -> bool:
    return not isinstance(value, dict | list) and not (isinstance(value, str) and "\n" in value)
