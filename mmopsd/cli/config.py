"""``mmopsd config``: ``migrate`` rewrites configs written before the config had sections;
``show`` prints a config with every default and its method's fields filled in."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmopsd.cli.args import add_overrides
from mmopsd.errors import ConfigError


def add_config(sub: argparse._SubParsersAction) -> None:
    """The ``config`` command's arguments."""
    cfg = sub.add_parser("config", help="migrate a flat config to sections, or show a config")
    what = cfg.add_subparsers(dest="action", required=True)
    mig = what.add_parser("migrate", help="rewrite flat configs (or runs' config.yaml) in sections")
    mig.add_argument("files", type=Path, nargs="+", help="YAML config files")
    mig.add_argument(
        "--in-place", action="store_true", help="rewrite the files (default: print the result)"
    )
    mig.set_defaults(run=run_migrate)
    show = what.add_parser("show", help="a config with every default and its method filled in")
    show.add_argument("--config", type=Path, default=None, help="YAML config (default: none)")
    add_overrides(show)
    show.set_defaults(run=run_show)


def run_migrate(args: argparse.Namespace) -> int:
    """Each file's sectioned form, printed or written back (checked before anything is
    written: a file that does not load afterwards is left as it was)."""
    from mmopsd.config import from_dict, is_flat, migrate, parse_yaml
    from mmopsd.config.writing import dump

    for path in args.files:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} holds no mapping of config fields")
        new = migrate(data)
        from_dict(new)  # the migrated config loads
        text = dump(new)
        if not args.in_place:
            print(f"# {path}\n{text}", end="")
        elif is_flat(data):
            path.write_text(_header(path) + text, encoding="utf-8")
            print(f"{path}: migrated")
        else:
            print(f"{path}: has sections already")
    return 0


def _header(path: Path) -> str:
    """The comment lines that open ``path`` (kept by a rewrite)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    head = []
    for line in lines:
        if not line.startswith("#"):
            break
        head.append(line)
    return "".join(head)


def run_show(args: argparse.Namespace) -> int:
    """The config as a run would use it."""
    from mmopsd.config import load_config
    from mmopsd.config.writing import dump
    from mmopsd.training.components import prepared

    config = prepared(load_config(args.config, args.overrides))
    print(dump(config.to_dict()), end="")
    return 0
