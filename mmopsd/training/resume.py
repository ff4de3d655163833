"""Resuming a run: the newest checkpoint that loads, with a warning for each one that does not;
a finished run's summary without training again; the components and metrics put back.

A latest checkpoint can be damaged after it was written (a disk filled by another process, a
partial copy). Resuming then names the bad file and falls back to the newest checkpoint that
loads; only when none loads does it stop, since starting over would discard the run's metrics.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mmopsd.errors import CheckpointError, MmopsdWarning
from mmopsd.parallel import load_full_state
from mmopsd.training import checkpoint
from mmopsd.training.metrics import MetricsLog
from mmopsd.training.summary import RunSummary, summarise_run

if TYPE_CHECKING:
    from mmopsd.training.components import Components


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
    (through ``put`` for a sharded model, see :func:`mmopsd.training.checkpoint.load`)."""
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
        "away, or set run.resume=false to start over (this replaces the run's metrics)"
    )


def eval_at(records: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The last evaluation record at ``step``, if the metrics hold one."""
    evals = [r for r in records if r.get("kind") == "eval" and r.get("step") == step]
    return evals[-1] if evals else None


def finished(found: Path, out: Path) -> RunSummary | None:
    """The summary of a run whose last checkpoint (``found``) is at or past its last step and
    whose metrics hold its final evaluation and summary (None if either is missing: the run
    then completes them once, without training)."""
    records = MetricsLog(out / "metrics.jsonl").read()
    step = checkpoint.step_of(found)
    after = eval_at(records, step)
    done = [r for r in records if r.get("kind") == "summary" and r.get("step") == step]
    meta = json.loads((found / "trainer_state.json").read_text())
    if after is None or not done or "before" not in meta:
        return None
    return summarise_run(step, meta["before"], after, done[-1]["seconds"], out)


def restore(
    c: Components, root: Path, found: Path, log: MetricsLog
) -> tuple[Path, int, dict[str, Any], dict[str, Any] | None]:
    """Load the newest sound checkpoint from ``found`` down into the components; drop the
    metrics of later steps. Returns the checkpoint loaded, its step, the run's first
    evaluation record and the last evaluation at that step (if any)."""
    par = c.parallel
    put = None
    if par.sharded:
        put = lambda w, o: load_full_state(par, c.policy.model, c.optimizer, w, o)  # noqa: E731
    found, restored, teacher_state = load_newest(root, found, c.policy.model, c.optimizer, put)
    c.teacher.load_state_dict(teacher_state)
    c.scheduler.last_epoch = restored.step
    if par.main:
        log.truncate_after(restored.step)
    return found, restored.step, restored.extra["before"], eval_at(log.read(), restored.step)
