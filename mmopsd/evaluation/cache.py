"""Evaluations that cannot change, computed once: a JSON file of results keyed by a digest of
everything they depend on.

A run evaluates its initial model before training, and a frozen teacher with a static
provider at every evaluation point; a comparison does both again in every run, on the same
episodes. :class:`EvalCache` keeps such results in one file (a run's ``eval_cache.json``, or
the comparison's, shared by its runs). The key holds the model's weights
(:func:`fingerprint`), the evaluation settings, the seeds, the library's own source
(:func:`code_digest`) and the versions of torch and transformers, so changing any of them
computes the result again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch


def fingerprint(model: torch.nn.Module) -> str:
    """A digest of a model's weights: every parameter and buffer's name, shape, dtype, sum
    and norm (computed where the weights live, so cheap on any device)."""
    rows = []
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            t = t.full_tensor() if hasattr(t, "full_tensor") else t  # FSDP2: a DTensor
            total = torch.sum(t.detach(), dtype=torch.float64).item()
            norm = torch.linalg.vector_norm(t.detach(), dtype=torch.float64).item()
            rows.append(f"{name}:{tuple(t.shape)}:{t.dtype}:{total:.10e}:{norm:.10e}")
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@cache
def code_digest() -> str:
    """A digest of the installed library's Python source (engine and plug-ins) and of the
    torch and transformers versions: results from other code are not reused."""
    import transformers

    h = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    for package in ("mmopsd", "mmopsd.agents", "mmopsd.envs", "mmopsd.privileged"):
        root = Path(importlib.util.find_spec(package).origin).parent  # type: ignore[union-attr,arg-type]
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(what: str, parts: Mapping[str, Any]) -> str:
    """The key of one result: ``what`` it is, and the digest of ``parts`` and the code."""
    text = json.dumps({"what": what, **parts, "code": code_digest()}, sort_keys=True,
                      default=str)  # fmt: skip
    return f"{what}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


class EvalCache:
    """Results by key in one JSON file; ``path`` None keeps nothing (every lookup computes).

    ``hits`` and ``computed`` list the keys of this process's lookups, for the metrics.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hits: list[str] = []
        self.computed: list[str] = []

    def get(
        self, what: str, parts: Mapping[str, Any], compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The stored result for (``what``, ``parts``), else ``compute()`` stored."""
        if self.path is None:
            return compute()
        key = cache_key(what, parts)
        stored = self._read()
        if key in stored:
            self.hits.append(key)
            return stored[key]
        value = compute()
        self.computed.append(key)
        self._write({**self._read(), key: value})
        return value

    def record(self) -> dict[str, Any]:
        """What the metrics say of the cache: its file and the keys reused and computed."""
        return {"file": str(self.path), "reused": list(self.hits), "computed": list(self.computed)}

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError:  # a damaged file is recomputed, never trusted
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        """Atomic: a reader never sees half a file."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)
