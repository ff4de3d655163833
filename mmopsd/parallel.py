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
        mode: ``none`` (one process), ``ddp`` or ``fsdp``.
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
    @property
    def sharded(self) -> bool:
        """Whether the student's parameters are sharded over the ranks (FSDP2)."""
        return self.active and self.mode == "fsdp"

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """Prepare the student: DDP returns the wrapper its training forward goes through;
        FSDP2 shards ``model`` in place (each decoder layer, then the root) and returns None.
        Build the optimizer after this: FSDP2 replaces the parameters."""
        if not self.active:
            return None
        if self.mode == "fsdp":
            from torch.distributed.fsdp import fully_shard

            root = fsdp_root(model)
            for module in root.modules():
                if type(module).__name__.endswith("DecoderLayer"):
                    fully_shard(module)
            fully_shard(root)
            return None
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.cuda.current_device()] if dist.get_backend() == "nccl" else None
        return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    @contextlib.contextmanager
    def accumulate(self, model: torch.nn.Module, last: bool) -> Iterator[None]:
        """Gradients of non-final micro-batches stay local; the last one synchronises.
        ``model`` is the DDP wrapper, or the FSDP2-sharded student."""
        if last or not self.active:
            yield
        elif self.sharded:
            root = fsdp_root(model)
            root.set_requires_gradient_sync(False)  # type: ignore[operator]
            try:
                yield
            finally:
                root.set_requires_gradient_sync(True)  # type: ignore[operator]
        else:
            with model.no_sync():  # type: ignore[operator]
                yield

    @contextlib.contextmanager
    def gathered(self, model: torch.nn.Module) -> Iterator[None]:
        """Whole parameters on every rank while inside (FSDP2): generation and scoring that
        differ in length between ranks then run without collectives. Nothing for DDP."""
        if not self.sharded:
            yield
            return
        from torch.distributed.fsdp import FSDPModule

        root = fsdp_root(model)
        shards = [m for m in root.modules() if isinstance(m, FSDPModule)]
        for m in shards:
            m.unshard()
        root.set_reshard_after_forward(False)  # type: ignore[operator]
        try:
            yield
        finally:
            root.set_reshard_after_forward(True)  # type: ignore[operator]
            for m in shards:
                m.reshard()

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def fsdp_root(model: torch.nn.Module) -> torch.nn.Module:
    """The module FSDP2 shards as root: the model whose forward and ``generate`` run (inside
    a peft wrapper, the adapted base model)."""
    base = getattr(model, "get_base_model", None)
    return base() if callable(base) else model


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
            f"launched on {world} processes but run.parallel is none: set run.parallel: ddp or "
            "auto (--set run.parallel=ddp), or launch one process"
        )
    mode = "ddp" if mode == "auto" else mode
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


# ---------------------------------------------------------------- whole state, any mode
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors by name (all weights, or only adapters with LoRA)."""
    return {
        n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad
    }


def full_state(
    par: Parallel, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trainable weights and the optimizer state, whole and in the one-process format
    (optimizer state by parameter index): checkpoints load on any number of processes, in
    any mode. A collective under FSDP2, where only rank 0 gets the tensors."""
    if not par.sharded:  # every rank holds everything; rank 0 writes it
        return (trainable_state(model), optimizer.state_dict()) if par.main else ({}, {})
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    names = _trainable_names(model)
    weights = get_model_state_dict(model, options=options)
    weights = {n: weights[n].contiguous() for n in names if n in weights}
    by_name = get_optimizer_state_dict(model, optimizer, options=options)
    return weights, optimizer_state_by_index(by_name, names) if by_name else {}


def full_model_state(par: Parallel, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """Every tensor of a sharded model, whole, on rank 0 (a collective under FSDP2; other
    ranks get an empty dict); None when the model is not sharded (it holds them itself)."""
    if not par.sharded:
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def load_full_state(
    par: Parallel,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    weights: dict[str, torch.Tensor],
    optim_state: dict[str, Any],
) -> None:
    """Put whole weights and optimizer state (one-process format) into a sharded student
    (every rank passes the same whole tensors)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=options)
    by_name = optimizer_state_by_name(optim_state, _trainable_names(model))
    set_optimizer_state_dict(model, optimizer, by_name, options=options)


def optimizer_state_by_index(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A state keyed by parameter name as keyed by index (``Optimizer.state_dict`` form)."""
    index = {n: i for i, n in enumerate(names)}
    return {
        "state": {index[n]: s for n, s in state["state"].items()},
        "param_groups": [
            {**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]
        ],
    }


def optimizer_state_by_name(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The inverse of :func:`optimizer_state_by_index`."""
    return {
        "state": {names[i]: s for i, s in state["state"].items()},
        "param_groups": [
            {**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]
        ],
    }


def _trainable_names(model: torch.nn.Module) -> list[str]:
    """Trainable parameter names in the optimizer's order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]
