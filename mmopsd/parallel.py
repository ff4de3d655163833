"""Data-parallel training over ``torch.distributed``, launched by ``torchrun`` or
``accelerate launch`` (gloo on CPU, NCCL on GPUs).

Each rank plays a contiguous block of the batch's tasks (whole groups, disjoint seeds), the
trajectories are gathered so that every rank plans the same turn weights as a one-process run,
and each rank trains on the turns of its own episodes. The student's forward goes through
:class:`~torch.nn.parallel.DistributedDataParallel`; every rank runs the same number of
micro-batches (padded with empty ones) and only the last synchronises gradients. DDP averages
gradients over ranks, so each rank's loss is scaled by the number of ranks: the update equals
the one-process update on the same episodes. Collectives time out after ``timeout`` seconds,
so a rank that dies ends the run instead of hanging it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from mmopsd.errors import ConfigError

T = TypeVar("T")


@dataclass
class Parallel:
    """This process's place in the run.

    Attributes:
        mode: ``none`` (one process) or ``ddp``.
        rank: this process's rank.
        world: the number of processes.
    """

    mode: str = "none"
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes metrics, checkpoints and progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world > 1

    # ------------------------------------------------------------------- sharding
    def block(self, n: int) -> range:
        """This rank's contiguous share of ``n`` items (ranks before it take one more item
        each when ``n`` does not divide evenly)."""
        size, extra = divmod(n, self.world)
        start = self.rank * size + min(self.rank, extra)
        return range(start, start + size + (self.rank < extra))

    def gather(self, items: Sequence[T]) -> list[T]:
        """Every rank's ``items``, concatenated in rank order (a collective)."""
        if not self.active:
            return list(items)
        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, list(items))
        return [x for part in parts for x in part]

    def max(self, value: int) -> int:
        """The largest ``value`` over ranks (a collective)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.long, device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over ranks (a collective)."""
        if not self.active:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist()))

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()

    # ------------------------------------------------------------------- the model
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the student's training forward goes through."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.cuda.current_device()] if dist.get_backend() == "nccl" else None
        return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    @staticmethod
    def accumulate(wrapped: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
        """Gradients of non-final micro-batches stay local; the last one synchronises."""
        if last or not hasattr(wrapped, "no_sync"):
            return contextlib.nullcontext()
        return wrapped.no_sync()

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def launched_world() -> int:
    """The number of processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(mode: str, timeout: float = 600.0) -> Parallel:
    """Join the process group the launcher set up (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``
    in the environment); one process needs nothing."""
    world = launched_world()
    if world == 1:
        return Parallel("none", 0, 1)
    if mode == "none":
        raise ConfigError(
            f"launched on {world} processes but parallel is none: set parallel: ddp or auto "
            "(--set parallel=ddp), or launch one process"
        )
    mode = "ddp"
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(
            backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout)
        )
    return Parallel(mode, dist.get_rank(), dist.get_world_size())


@contextlib.contextmanager
def shutdown_on_exit(parallel: Parallel) -> Iterator[None]:
    """Leave the process group when the run ends (normally or not)."""
    try:
        yield
    finally:
        if parallel.active and dist.is_initialized():
            dist.destroy_process_group()
