"""The browser pool's bookkeeping, without a browser: a browser whose run ended while a thread
was still starting it is closed, never lent (it would outlive the run)."""

from __future__ import annotations

import pytest
from mmopsd.envs.browsers import BrowserPool


class FakeInstance:
    """What the pool calls of a miniwob ``SeleniumInstance`` here."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_browser_started_after_its_run_ended_is_closed_not_lent():
    pool = BrowserPool(2)
    started_in = pool.epoch  # a thread begins starting a browser for the run
    held = pool._lend(FakeInstance(), started_in)  # another environment of the run holds one
    pool.close_all()  # the run ends (SIGTERM, an error, its last step)
    assert held.closed and pool.lent == []
    late = FakeInstance()
    with pytest.raises(RuntimeError, match="has ended"):
        pool._lend(late, started_in)  # ... and the thread's browser comes up afterwards
    assert late.closed and pool.lent == []
    kept = pool._lend(FakeInstance(), pool.epoch)  # the next run's browsers are lent as usual
    assert pool.lent == [kept] and not kept.closed
