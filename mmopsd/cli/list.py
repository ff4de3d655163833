"""``mmopsd list``: what can be named in a config or on the command line."""

from __future__ import annotations

import argparse


def add_list(sub: argparse._SubParsersAction) -> None:
    """The ``list`` command."""
    p = sub.add_parser(
        "list", help="registered losses, teachers, providers, environments and models"
    )
    p.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    """Print every registry's names."""
    import gymnasium as gym

    import mmopsd.envs  # noqa: F401  (registers mmopsd/* ids)
    from mmopsd.evaluation.suites import SUITES
    from mmopsd.losses import WEIGHTINGS, names
    from mmopsd.methods import METHODS
    from mmopsd.policies.packaged import PACKAGED
    from mmopsd.privileged import PROVIDERS
    from mmopsd.training.teachers import TEACHERS

    print("methods:     ", ", ".join(METHODS.names()))
    print("losses:      ", ", ".join(names()))
    print("weightings:  ", ", ".join(["none", *WEIGHTINGS.names()]))
    print("teachers:    ", ", ".join(TEACHERS.names()))
    print("providers:   ", ", ".join(PROVIDERS.names()))
    print("environments:", ", ".join(sorted(k for k in gym.registry if k.startswith("mmopsd/"))))
    print("models:      ", ", ".join(PACKAGED))
    print("suites:      ", ", ".join(SUITES.names()))
    return 0
