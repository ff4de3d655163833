"""Process-level settings for fast CPU training.

glibc returns large freed blocks to the operating system at once (``munmap``) and maps fresh
pages for the next allocation of the same size. A training step allocates and frees
activations of the same sizes every time, so on CPU a large share of a step can go to page
faults. :func:`tune_cpu_allocator` keeps freed memory in the process heap instead (memory is
reused, not returned: resident memory stays near the peak). It measured about 20-30% off a
distillation step of SmolLM2-135M on 2 cores (``benchmarks/distill_step_time.py``).
Set ``MMOPSD_NO_MALLOC_TUNING=1`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3


@cache
def tune_cpu_allocator() -> bool:
    """Make glibc keep freed memory for reuse; True if the settings were applied."""
    if sys.platform != "linux" or os.environ.get("MMOPSD_NO_MALLOC_TUNING"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    ok = mallopt(M_MMAP_THRESHOLD, ctypes.c_int(1 << 30)) or mallopt(
        M_MMAP_THRESHOLD, ctypes.c_int(32 << 20)
    )
    ok = mallopt(M_TRIM_THRESHOLD, ctypes.c_int((1 << 31) - 1)) and ok
    ok = mallopt(M_TOP_PAD, ctypes.c_int(256 << 20)) and ok
    return bool(ok)
