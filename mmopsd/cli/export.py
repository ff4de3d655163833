"""``mmopsd export SOURCE OUT``: a run's model as a folder transformers loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmopsd.export.folder import LORA_MODES


def add_export(sub: argparse._SubParsersAction) -> None:
    """The ``export`` command's arguments."""
    ex = sub.add_parser(
        "export",
        help="write a run's model (or a checkpoint's) as a folder transformers, "
        "`transformers serve` and vLLM load",
    )
    ex.add_argument(
        "source", type=Path, help="a run directory (its newest checkpoint) or a checkpoint"
    )
    ex.add_argument("out", type=Path, help="the folder to write")
    ex.add_argument(
        "--lora",
        choices=LORA_MODES,
        default="merge",
        help="a LoRA run: merge the adapters into the weights (default) or save the adapter",
    )
    ex.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    ex.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export and say where."""
    from mmopsd.export import export_run

    out = export_run(args.source, args.out, lora=args.lora, overwrite=args.overwrite)
    print(f"exported to {out} (load it with from_pretrained; see its README.md)")
    return 0
