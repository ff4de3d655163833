"""Start an OpenAI-compatible server on a free 127.0.0.1 port, without a GPU, for tests,
benchmarks and trying ``--base-url``: ``transformers serve`` of a local model directory, or
llama.cpp's server (``llama-cpp-python``) of a GGUF file."""

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
    what = "transformers serve (pip install 'transformers[serving]'?)"
    with _serving(command, port, "/health", what, log, start_timeout) as url:
        yield url


@contextmanager
def llama_cpp_serve(
    gguf: str | Path,
    alias: str,
    *,
    log: str | Path | None = None,
    start_timeout: float = 120.0,
    context: int = 2048,
    batch: int | None = None,
) -> Iterator[str]:
    """Serve the GGUF file ``gguf`` under the model name ``alias`` with llama.cpp's server and
    yield its base URL; the server stops on exit.

    Needs ``pip install 'llama-cpp-python[server]'`` (a source build, minutes on a CPU).
    ``batch`` sets llama.cpp's ``n_batch`` (prompt tokens decoded at once).
    """
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context),
        *(["--n_batch", str(batch)] if batch is not None else []),
    ]  # fmt: skip
    what = "llama.cpp's server (pip install 'llama-cpp-python[server]'?)"
    with _serving(command, port, "/v1/models", what, log, start_timeout) as url:
        yield url


@contextmanager
def _serving(
    command: list[str], port: int, health: str, what: str, log: str | Path | None, timeout: float
) -> Iterator[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log_path = Path(log) if log is not None else None
    out = log_path.open("w") if log_path is not None else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_up(proc, f"http://127.0.0.1:{port}{health}", timeout, log_path, what)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path is not None:
            out.close()  # type: ignore[union-attr]


def _wait_until_up(
    proc: subprocess.Popen, url: str, timeout: float, log: Path | None, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log is not None and log.is_file() else ""
                raise ServerError(f"{what} did not come up at {url} {tail}") from None
            time.sleep(0.5)
