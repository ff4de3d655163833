"""The ``mmopsd`` command line: one module per command (``demo`` and ``train``, ``eval``,
``export``, ``compare``, ``list``, ``config``), each adding its arguments and the function
that runs it."""

from __future__ import annotations

import sys
import warnings

from mmopsd.cli.args import Parser
from mmopsd.cli.compare import add_compare
from mmopsd.cli.config import add_config
from mmopsd.cli.eval import add_eval
from mmopsd.cli.export import add_export
from mmopsd.cli.list import add_list
from mmopsd.cli.train import add_demo, add_train
from mmopsd.envs.processes import owned_by_run
from mmopsd.errors import MmopsdError, MmopsdWarning

COMMANDS = (add_demo, add_train, add_eval, add_export, add_compare, add_list, add_config)


def parser() -> Parser:
    """The command line's parser: every command's arguments."""
    p = Parser(
        prog="mmopsd", description="On-policy self-distillation with privileged information."
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmopsd`` console script: errors of ours print as one line and
    exit 2."""
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            with owned_by_run():  # browsers and other processes end with the command
                return args.run(args)
        except MmopsdError as err:
            print(f"mmopsd: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """mmopsd's own warnings as one line each; others as Python prints them."""
    if issubclass(category, MmopsdWarning):
        print(f"mmopsd: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


if __name__ == "__main__":
    raise SystemExit(main())
