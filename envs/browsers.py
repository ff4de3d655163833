"""A process-wide pool of headless Chromium browsers for MiniWoB++ environments.

Starting Chromium and ChromeDriver takes about a second and a half; an evaluation or a run
makes many MiniWoB environments (one per episode slot, of several tasks, again at every
evaluation point). A closed environment gives its browser back to :data:`POOL`, and the next
environment made, of any task with the standard page size, takes it and only loads its own
task's page. An idle browser waits on a blank page (a task page's timers keep it busy). A
browser that died is never given back. At most ``MMOPSD_BROWSER_POOL`` (default 16) idle
browsers are kept; the rest are closed. The run that started them owns them: when it ends
(:func:`mmopsd.envs.processes.owned_by_run`), every browser of the pool closes, idle or lent,
and so do the idle ones when the interpreter exits. No browser is ever ended by name.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

from mmopsd.envs.processes import add_pool

from mmopsd.allocator import give_back_if_short

log = logging.getLogger(__name__)
START_TRIES = 3


class BrowserPool:
    """Idle miniwob ``SeleniumInstance`` drivers, lent to new environments."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[Any] = []  # webdriver objects with a live Chromium
        self.lock = threading.Lock()
        self.lent: list[Any] = []  # instances whose browser an environment holds
        self.started = 0  # browsers started (for tests and benchmarks)
        self.reused = 0
        self.epoch = 0  # how many times close_all ran: a run's end

    def instance(self, kwargs: dict[str, Any]) -> Any:
        """A started ``SeleniumInstance`` for the task of ``kwargs`` (miniwob's own instance
        arguments), on an idle browser when there is one."""
        from miniwob.selenium_instance import SeleniumInstance

        epoch = self.epoch
        instance = SeleniumInstance(index=0, **kwargs)
        pooled = not instance.url.startswith("http") and kwargs["headless"]  # not FlightWoB
        while pooled and (driver := self._idle()) is not None:
            try:
                _load(instance, driver)
                self.reused += 1
                return self._lend(instance, epoch)
            except Exception as err:  # a browser that died while idle: drop it, try the next
                log.info("an idle browser could not load %s (%s); dropped", instance.url, err)
                _quit(driver)
                if hasattr(instance, "driver"):
                    del instance.driver
        give_back_if_short()  # a browser about to start needs the memory the heap keeps
        _start(instance)
        instance.wait()
        self.started += 1
        return self._lend(instance, epoch)

    def _lend(self, instance: Any, epoch: int) -> Any:
        """Track ``instance`` as lent; one whose run ended while its browser started (a
        thread still starting it when the run was stopped) is closed instead."""
        with self.lock:
            current = epoch == self.epoch
            if current:
                self.lent.append(instance)
        if not current:
            instance.close()
            raise RuntimeError("the run that asked for this browser has ended; it was closed")
        return instance

    def give_back(self, instance: Any) -> None:
        """Keep ``instance``'s browser for a later environment (or close it if the pool is
        full, the browser died, or it is a FlightWoB page)."""
        self.forget(instance)
        driver = getattr(instance, "driver", None)
        keep = driver is not None and not instance.died and instance.headless
        keep = keep and not instance.url.startswith("http") and _blank(driver)
        with self.lock:
            if keep and len(self.idle) < self.size:
                self.idle.append(driver)
                instance.died = True  # the instance itself is finished; its browser lives on
                return
        instance.close()

    def close(self) -> None:
        """Quit every idle browser."""
        with self.lock:
            idle, self.idle = self.idle, []
        for driver in idle:
            _quit(driver)

    def forget(self, instance: Any) -> None:
        """Stop tracking ``instance`` (given back, or closed by its environment)."""
        with self.lock:
            self.lent = [i for i in self.lent if i is not instance]

    def close_all(self) -> None:
        """Quit every browser of the pool, idle or held by an environment (the end of the
        run that started them)."""
        with self.lock:
            lent, self.lent = self.lent, []
            self.epoch += 1
        for instance in lent:
            try:
                instance.close()
            except Exception as err:  # already gone
                log.info("closing a browser: %s", err)
        self.close()

    def _idle(self) -> Any:
        with self.lock:
            return self.idle.pop() if self.idle else None


def _start(instance: Any, tries: int = START_TRIES) -> None:
    """Start ``instance``'s Chromium; a start that fails (a machine short of memory, most
    often) is tried again after the process gives its free heap memory back."""
    for attempt in range(1, tries + 1):
        try:
            instance.start()
            return
        except Exception as err:
            if attempt == tries:
                raise RuntimeError(
                    f"Chromium did not start in {tries} tries ({str(err).splitlines()[0]}); "
                    "check that the machine has memory to spare and that chromium and "
                    "chromium-driver are installed"
                ) from err
            log.warning("Chromium did not start (%s); trying again", str(err).splitlines()[0])
            give_back_if_short(1.0)  # whatever the share: the heap's free memory goes back
            time.sleep(2.0 * attempt)


def _load(instance: Any, driver: Any) -> None:
    """Point ``instance`` at ``driver`` and load its task's page, as miniwob's
    ``create_driver`` does after starting a browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.wait import WebDriverWait

    instance.driver = driver
    driver.get(instance.url)
    WebDriverWait(driver, 5).until(EC.element_to_be_clickable((By.ID, instance.SYNC_SCREEN_ID)))
    instance.inner_width, instance.inner_height = driver.execute_script(
        "return [window.innerWidth, window.innerHeight];"
    )


def _blank(driver: Any) -> bool:
    """Leave the task's page (its timers keep an idle browser busy); False if the browser
    no longer answers."""
    try:
        driver.get("about:blank")
    except Exception as err:  # gone or hung: not worth keeping
        log.info("an idle browser could not leave its page (%s); closed", err)
        return False
    return True


def _quit(driver: Any) -> None:
    try:
        driver.quit()
    except Exception as err:  # already gone
        log.info("closing an idle browser: %s", err)


POOL = BrowserPool(int(os.environ.get("MMOPSD_BROWSER_POOL", "16")))
add_pool(POOL)
atexit.register(POOL.close)


def pooled(cls: type) -> type:
    """A subclass of a miniwob environment class whose browser comes from, and goes back
    to, :data:`POOL`."""

    def _hard_reset_instance(self: Any) -> None:
        old = getattr(self, "instance", None)
        if old is not None:
            POOL.forget(old)
            old.close()  # a dead or replaced browser is never pooled
        self.instance = POOL.instance(self.instance_kwargs)

    def close(self: Any) -> None:
        if getattr(self, "instance", None) is not None:
            POOL.give_back(self.instance)
            self.instance = None

    metadata = {**cls.metadata, "concurrent_steps": True}  # the time is in the browser
    return type(cls.__name__, (cls,), {"_hard_reset_instance": _hard_reset_instance,
                                       "close": close, "metadata": metadata})  # fmt: skip
