"""The CPU allocator: freed memory kept for reuse, given back when the machine runs short."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mmopsd.allocator import available_share, give_back_if_short


def test_the_available_share_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    250 kB\n")
    assert available_share(str(meminfo)) == 0.25
    meminfo.write_text("MemTotal: 1000 kB\n")
    assert available_share(str(meminfo)) is None
    assert available_share(str(tmp_path / "missing")) is None


def test_nothing_is_given_back_while_memory_is_plentiful():
    assert give_back_if_short(min_share=0.0) is False


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim")
def test_freed_memory_the_tuned_heap_keeps_goes_back_when_short():
    script = textwrap.dedent(
        """
        import os, torch
        from mmopsd.allocator import give_back_if_short, tune_cpu_allocator

        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        assert tune_cpu_allocator()
        blocks = [torch.ones(1 << 20) for _ in range(128)]  # 512 MiB in 4 MiB tensors
        held = rss()
        del blocks
        kept = rss()  # freed, still resident: the heap keeps it
        assert give_back_if_short(min_share=1.01)  # always short of 101%
        print(held >> 20, kept >> 20, rss() >> 20)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    held, kept, after = map(int, out.stdout.split())
    assert kept > held - 64  # the tuned heap kept the freed blocks
    assert after < kept - 400  # and gave them back
