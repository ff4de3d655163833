"""``mmopsd compare``: several methods or configs over several seeds, one table and one
learning curve."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmopsd.cli.args import add_overrides
from mmopsd.errors import ConfigError


def add_compare(sub: argparse._SubParsersAction) -> None:
    """The ``compare`` command's arguments."""
    cmp = sub.add_parser(
        "compare",
        help="several methods or configs over several seeds, on equal budgets: one table "
        "and one learning curve",
    )
    cmp.add_argument("--config", type=Path, help="base YAML config (with --methods)")
    cmp.add_argument(
        "--methods",
        help="comma-separated method presets run on --config, e.g. opsd,sft_teacher,grpo",
    )
    cmp.add_argument(
        "--arm",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME KEY=VALUE",
        help="an arm on --config with its own overrides, beside --methods or alone; "
        "repeatable: --arm opsd-mixed method.name=gkd method.teacher_share=0.5",
    )
    cmp.add_argument(
        "--configs", type=Path, nargs="+", help="or: YAML configs compared as they are"
    )
    cmp.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    cmp.add_argument("--out", type=Path, required=True, help="directory of the runs and results")
    add_overrides(cmp)
    cmp.set_defaults(run=run_compare)


def arms_of(args: argparse.Namespace) -> list[Any]:
    """The compared arms the arguments name: ``--methods`` and ``--arm`` on ``--config``, or
    ``--configs``."""
    from mmopsd import compare
    from mmopsd.config import load_data

    if bool(args.methods or args.arm) == bool(args.configs):
        raise ConfigError("pass either --methods or --arm (with --config), or --configs")
    if args.configs:
        return [compare.Arm(p.stem, load_data(p, args.overrides)) for p in args.configs]
    base = load_data(args.config, args.overrides)
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    arms = compare.arms_for_methods(base, methods) if methods else []
    return arms + [compare.arm_of(base, spec) for spec in args.arm]


def run_compare(args: argparse.Namespace) -> int:
    """Run (or resume) every arm on every seed; print the table."""
    from mmopsd import compare
    from mmopsd.evaluation.report import compare_table

    arms = arms_of(args)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    summary = compare.run_compare(arms, seeds, args.out, progress=not args.quiet)
    print()
    print(compare_table(summary))
    print(f"results in {args.out}/compare.md, compare.png, compare.json")
    return 0
