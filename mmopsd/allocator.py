"""Process-level settings for fast CPU training.

glibc returns large freed blocks to the operating system at once (``munmap``) and maps fresh
pages for the next allocation of the same size. A training step allocates and frees
activations of the same sizes every time, so on CPU a large share of a step can go to page
faults. :func:`tune_cpu_allocator` keeps freed memory in the process heap instead (memory is
reused, not returned). It measured about 20-30% off a distillation step of SmolLM2-135M on
2 cores (``benchmarks/distill_step_time.py``). Set ``MMOPSD_NO_MALLOC_TUNING=1`` to leave the
allocator alone.

Kept memory only grows: phases of other shapes (rollouts, the backward pass, an evaluation's
batches) each leave free blocks the next cannot use, and a MiniWoB++ run's heap reached 16 GiB
of which 8 were free, until its browsers could not start. :func:`give_back_if_short`, called
before a browser starts (:mod:`mmopsd.envs.browsers`), gives free memory back
(``malloc_trim``) whenever the machine's available memory falls below a share of the whole
(``MMOPSD_MIN_AVAILABLE``, default 0.25), and costs a read of ``/proc/meminfo`` otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache
from pathlib import Path

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (another C library, another system)."""
    name = ctypes.util.find_library("c") if sys.platform == "linux" else None
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def available_share(meminfo: str = "/proc/meminfo") -> float | None:
    """The machine's available memory as a share of the whole (None where unknown)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(meminfo).read_text().splitlines())
        return int(fields["MemAvailable"].split()[0]) / int(fields["MemTotal"].split()[0])
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return None


def give_back_if_short(min_share: float | None = None) -> bool:
    """Return the heap's free memory to the system when the machine's available memory is
    below ``min_share`` of the whole (default ``MMOPSD_MIN_AVAILABLE``, else 0.25); True if
    it was short and the heap was trimmed."""
    libc = _libc()
    if libc is None:
        return False
    if min_share is None:
        min_share = float(os.environ.get("MMOPSD_MIN_AVAILABLE", "0.25"))
    share = available_share()
    if share is None or share >= min_share:
        return False
    libc.malloc_trim(0)
    return True


@cache
def tune_cpu_allocator() -> bool:
    """Make glibc keep freed memory for reuse; True if the settings were applied."""
    if sys.platform != "linux" or os.environ.get("MMOPSD_NO_MALLOC_TUNING"):
        return False
    libc = _libc()
    if libc is None:  # not glibc
        return False
    mallopt = libc.mallopt
    ok = mallopt(M_MMAP_THRESHOLD, ctypes.c_int(1 << 30)) or mallopt(
        M_MMAP_THRESHOLD, ctypes.c_int(32 << 20)
    )
    ok = mallopt(M_TRIM_THRESHOLD, ctypes.c_int((1 << 31) - 1)) and ok
    ok = mallopt(M_TOP_PAD, ctypes.c_int(256 << 20)) and ok
    return bool(ok)
