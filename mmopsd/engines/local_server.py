"""Start ``transformers serve`` for a local model directory on a free 127.0.0.1 port: an
OpenAI-compatible server without a GPU, for tests, benchmarks and trying ``--base-url``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmopsd.errors import ServerError


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(
    model_dir: str | Path, *, log: str | Path | None = None, start_timeout: float = 120.0
) -> Iterator[str]:
    """Serve ``model_dir`` (offline) and yield its base URL; the server stops on exit.

    Needs ``pip install 'transformers[serving]'``. Raises :class:`ServerError` with the
    server's last output when it does not come up within ``start_timeout`` seconds.
    """
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    command = [str(cli), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log_path = Path(log) if log is not None else None
    out = log_path.open("w") if log_path is not None else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_up(proc, port, start_timeout, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path is not None:
            out.close()  # type: ignore[union-attr]


def _wait_until_up(proc: subprocess.Popen, port: int, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log is not None and log.is_file() else ""
                raise ServerError(
                    f"transformers serve did not come up on port {port} "
                    f"(pip install 'transformers[serving]'?) {tail}"
                ) from None
            time.sleep(0.5)
