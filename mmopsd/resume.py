"""Resuming a run: the newest checkpoint that loads, with a warning for each one that does not.

A latest checkpoint can be damaged after it was written (a disk filled by another process, a
partial copy). Resuming then names the bad file and falls back to the newest checkpoint that
loads; only when none loads does it stop, since starting over would discard the run's metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mmopsd import checkpoint
from mmopsd.errors import CheckpointError, MmopsdWarning


class CheckpointWarning(MmopsdWarning):
    """A checkpoint was skipped because a file of it is missing, truncated or corrupt."""


def newest_sound(root: Path) -> Path | None:
    """The newest checkpoint under ``root`` whose files match their manifest (None when
    there is none at all); checkpoints that fail are named in a :class:`CheckpointWarning`.

    Raises:
        CheckpointError: there are checkpoints, but none is sound.
    """
    found = checkpoint.candidates(root)
    for path in found:
        try:
            checkpoint.verify(path)
            checkpoint.step_of(path)
            return path
        except CheckpointError as err:
            _skip(path, err)
    if found:
        raise _none_loads(root)
    return None


def load_newest(
    root: Path,
    start: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    put: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
) -> tuple[Path, checkpoint.Restored, dict[str, torch.Tensor]]:
    """Load ``start``, or the newest older checkpoint that loads, into model and optimizer
    (through ``put`` for a sharded model, see :func:`mmopsd.checkpoint.load`)."""
    found = checkpoint.candidates(root)
    for path in found[found.index(start) :]:
        try:
            restored, teacher = checkpoint.load(path, model, optimizer, put=put)
            return path, restored, teacher
        except CheckpointError as err:
            _skip(path, err)
    raise _none_loads(root)


def _skip(path: Path, err: CheckpointError) -> None:
    warnings.warn(
        f"skipping checkpoint {path}: {err}; resuming from the newest one that loads",
        CheckpointWarning,
        stacklevel=3,
    )


def _none_loads(root: Path) -> CheckpointError:
    return CheckpointError(
        f"no checkpoint under {root} loads (see the warnings above); move the bad ones "
        "away, or set resume=false to start over (this replaces the run's metrics)"
    )
