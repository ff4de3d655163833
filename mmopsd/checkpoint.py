"""Checkpoints: model weights in safetensors, optimizer, teacher and RNG state, written
atomically. A checkpoint directory ``step-N`` appears only once it is complete (it is written
under a temporary name and renamed), so a killed run never leaves a half checkpoint."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


@dataclass
class Restored:
    """What :func:`load` brings back besides the tensors it loads in place."""

    step: int
    extra: dict[str, Any]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors by name (all weights, or only adapters with LoRA)."""
    return {
        n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad
    }


def save(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    teacher: dict[str, torch.Tensor] | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``root/step-{step}`` atomically and prune old ones."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{PREFIX}{step}-", dir=root))
    try:
        save_file(trainable_state(model), str(tmp / "model.safetensors"))
        if teacher:
            save_file(
                {k: v.contiguous().cpu() for k, v in teacher.items()},
                str(tmp / "teacher.safetensors"),
            )
        torch.save({"optimizer": optimizer.state_dict(), "rng": rng_state()}, tmp / "state.pt")
        (tmp / "trainer_state.json").write_text(
            json.dumps({"step": step, **(extra or {})}, indent=2)
        )
        for f in tmp.iterdir():
            _fsync(f)
        final = root / f"{PREFIX}{step}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(root, keep)
    return final


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (temporary directories are ignored)."""
    if not root.is_dir():
        return None
    done = [p for p in root.glob(f"{PREFIX}*") if (p / "trainer_state.json").is_file()]
    return max(done, key=_step_of, default=None)


def load(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
) -> tuple[Restored, dict[str, torch.Tensor]]:
    """Load weights, optimizer and RNG state in place; returns the step, extras and the
    teacher tensors (empty if none were saved)."""
    load_weights(path, model)
    state = torch.load(path / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    teacher_file = path / "teacher.safetensors"
    teacher = load_file(str(teacher_file)) if teacher_file.is_file() else {}
    meta = json.loads((path / "trainer_state.json").read_text())
    return Restored(step=int(meta.pop("step")), extra=meta), teacher


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Copy a checkpoint's trainable tensors into ``model`` (same names, e.g. same LoRA)."""
    file = Path(path) / "model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint weights at {file}")
    weights = load_file(str(file))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise ValueError(f"checkpoint {path} holds tensors the model lacks: {missing[:3]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_of(path: Path) -> int:
    try:
        return int(path.name.removeprefix(PREFIX))
    except ValueError:
        return -1


def _prune(root: Path, keep: int) -> None:
    done = sorted((p for p in root.glob(f"{PREFIX}*") if _step_of(p) >= 0), key=_step_of)
    for old in done[: max(0, len(done) - max(1, keep))]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(f".tmp-{PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
