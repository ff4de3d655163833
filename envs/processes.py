"""Processes that environments start (headless browsers, simulators), owned by the run that
started them.

A module that starts such processes keeps them in a pool with a ``close_all`` method and
adds it with :func:`add_pool`. A run (training, an evaluation) holds :func:`owned_by_run`
around its work: when the outermost such block ends, normally, on an error, or because the
process was asked to stop (SIGTERM, as ``timeout`` sends), every pool closes every process it
started. Nothing is ever ended by name, so two runs on one machine never touch each other's
processes.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Protocol


class ProcessPool(Protocol):
    """Per-environment processes a module started."""

    def close_all(self) -> None:
        """End every process of the pool, idle or in use."""


# Environments with a process open at a time beside a model generating on the CPU.
SLOTS_BESIDE_CPU_MODEL = 8


def process_slots(beside_cpu_model: bool) -> int | None:
    """How many environments that own a process (those that step in threads: MiniWoB++'s
    browsers) may be open at a time when nobody asked for a number: 8 beside a model
    generating on the CPU, no bound elsewhere. On 2 cores, starting a headless Chromium costs
    about a second of CPU and an open one a share of a core, which 32 open browsers took from
    generation (MiniWoB++ click-button: 32 at a time 134 s, 8 at a time 102 s); text
    environments gain from 32 (KeyDoor: 7.3 s against 12.5 s)."""
    return SLOTS_BESIDE_CPU_MODEL if beside_cpu_model else None


_POOLS: list[ProcessPool] = []
_depth = 0


def add_pool(pool: ProcessPool) -> None:
    """Have :func:`owned_by_run` close ``pool``'s processes at the end of a run."""
    if pool not in _POOLS:
        _POOLS.append(pool)


def close_all() -> None:
    """End every process of every pool."""
    for pool in _POOLS:
        pool.close_all()


@contextlib.contextmanager
def owned_by_run() -> Iterator[None]:
    """The processes environments start inside this block end with it (the outermost
    block: an evaluation inside a training run leaves them to the run). In the main thread,
    a SIGTERM inside the block exits through it, so they end then too."""
    global _depth
    _depth += 1
    previous = None
    if _depth == 1 and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            close_all()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: object) -> None:
    sys.exit(128 + signum)
