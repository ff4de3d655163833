"""``mmopsd demo [NAME]`` and ``mmopsd train --config FILE``: a self-distillation run and its
before/after table."""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

from mmopsd.cli.args import add_overrides

DEMOS = {
    "keydoor": "keydoor_demo.yaml",
    "keydoor-multiroom": "keydoor_multiroom.yaml",
    "alfworld": "alfworld_expert_plan.yaml",
    "keydoor-skills": "keydoor_skills.yaml",
    "babyai": "babyai_bot.yaml",
    "miniwob": "miniwob_opsd.yaml",
}


def add_demo(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` command's arguments."""
    demo = sub.add_parser(
        "demo", help="self-distillation of the packaged SmolLM2-135M on CPU (KeyDoor by default)"
    )
    demo.add_argument(
        "name",
        nargs="?",
        default="keydoor",
        choices=sorted(DEMOS),
        help="keydoor (one room), keydoor-multiroom (multi-turn), alfworld (expert plans), "
        "keydoor-skills (skills the model writes itself), babyai (the BabyAI bot's moves) or "
        "miniwob (eight MiniWoB++ click tasks, the experts' next actions)",
    )
    add_overrides(demo)
    demo.set_defaults(run=run_demo)


def add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` command's arguments."""
    train = sub.add_parser("train", help="train from a YAML config")
    train.add_argument("--config", type=Path, help="YAML file of TrainConfig fields")
    add_overrides(train)
    train.set_defaults(run=run_train)


def run_demo(args: argparse.Namespace) -> int:
    """Train the named demo's packaged config."""
    with resources.as_file(resources.files("mmopsd.configs") / DEMOS[args.name]) as path:
        return _run(path, args)


def run_train(args: argparse.Namespace) -> int:
    """Train the given config."""
    return _run(args.config, args)


def _run(config_path: Path | None, args: argparse.Namespace) -> int:
    from mmopsd.config import load_config
    from mmopsd.training.loop import train

    config = load_config(config_path, args.overrides)
    summary = train(config, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:  # one summary for a data-parallel run
        return 0
    print()
    print(summary.table())
    minutes = summary.seconds / 60
    print(f"\n{summary.steps} steps in {minutes:.1f} min; outputs in {summary.out_dir}")
    return 0
