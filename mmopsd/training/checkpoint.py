"""Checkpoints: model weights in safetensors, optimizer, teacher and RNG state, written
atomically. A checkpoint directory ``step-N`` appears only once it is complete (it is written
under a temporary name and renamed), so a killed run never leaves a half checkpoint.

Files can still go bad afterwards (a disk filled by another process, a partial copy): each
checkpoint carries ``manifest.json`` with every file's size and SHA-256, :func:`verify`
checks them, and :func:`load` reads every file before it changes anything, so a bad
checkpoint raises :class:`~mmopsd.errors.CheckpointError` and leaves model and optimizer
untouched."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mmopsd.errors import CheckpointError
from mmopsd.parallel import trainable_state

PREFIX = "step-"
MANIFEST = "manifest.json"


@dataclass
class Restored:
    """What :func:`load` brings back besides the tensors it loads in place."""

    step: int
    extra: dict[str, Any]


def save(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    teacher: dict[str, torch.Tensor] | None = None,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
    weights: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``root/step-{step}`` atomically and prune old ones. ``weights`` and
    ``optimizer_state`` replace the model's and optimizer's own (whole tensors gathered from
    a sharded model)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{PREFIX}{step}-", dir=root))
    try:
        weights = trainable_state(model) if weights is None else weights
        save_file(weights, str(tmp / "model.safetensors"))
        if teacher:
            save_file(
                {k: v.contiguous().cpu() for k, v in teacher.items()},
                str(tmp / "teacher.safetensors"),
            )
        optim = optimizer.state_dict() if optimizer_state is None else optimizer_state
        torch.save({"optimizer": optim, "rng": rng_state()}, tmp / "state.pt")
        (tmp / "trainer_state.json").write_text(
            json.dumps({"step": step, **(extra or {})}, indent=2)
        )
        (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp), indent=2))
        for f in tmp.iterdir():
            _fsync(f)
        final = root / f"{PREFIX}{step}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise CheckpointError(
                f"no space left on the disk holding {root} while writing checkpoint "
                f"{PREFIX}{step}; nothing of it was kept and earlier checkpoints are intact. "
                "Free disk space (or lower run.keep_checkpoints) and run the same command again "
                "to resume"
            ) from e
        raise
    _prune(root, keep)
    return final


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (temporary directories are ignored)."""
    found = candidates(root)
    return found[0] if found else None


def candidates(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, newest first."""
    if not root.is_dir():
        return []
    done = [p for p in root.glob(f"{PREFIX}*") if (p / "trainer_state.json").is_file()]
    return sorted(done, key=_step_of, reverse=True)


def step_of(path: Path) -> int:
    """The step a checkpoint was written at (from its ``trainer_state.json``)."""
    return int(_read(path / "trainer_state.json", lambda f: json.loads(f.read_text()))["step"])


def verify(path: Path) -> None:
    """Raise :class:`CheckpointError` naming the first file whose size or SHA-256 differs
    from the manifest (checkpoints without a manifest are checked when loaded)."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return
    expected = _read(manifest, lambda f: json.loads(f.read_text()))
    for name, want in expected.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing")
        size = file.stat().st_size
        if size != want["bytes"]:
            raise CheckpointError(f"{file} has {size} bytes, {want['bytes']} were written")
        if _sha256(file) != want["sha256"]:
            raise CheckpointError(f"{file} is corrupt (its SHA-256 differs from the manifest)")


def load(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    put: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
) -> tuple[Restored, dict[str, torch.Tensor]]:
    """Load weights, optimizer and RNG state in place; returns the step, extras and the
    teacher tensors (empty if none were saved). Every file is read and checked first: on a
    :class:`CheckpointError` nothing has changed. ``put(weights, optimizer_state)`` loads
    the tensors instead of the plain copy (a sharded model)."""
    verify(path)
    weights = _read_weights(path, model)
    state = _read(path / "state.pt", lambda f: torch.load(f, weights_only=False))
    teacher_file = path / "teacher.safetensors"
    teacher = _read(teacher_file, lambda f: load_file(str(f))) if teacher_file.is_file() else {}
    meta = _read(path / "trainer_state.json", lambda f: json.loads(f.read_text()))
    if put is not None:
        put(weights, state["optimizer"])
        set_rng_state(state["rng"])
        return Restored(step=int(meta.pop("step")), extra=meta), teacher
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path / 'state.pt'} does not fit this optimizer: {err}") from err
    _copy_into(model, weights)
    set_rng_state(state["rng"])
    return Restored(step=int(meta.pop("step")), extra=meta), teacher


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Copy a checkpoint's trainable tensors into ``model`` (same names, e.g. same LoRA)."""
    verify(Path(path))
    _copy_into(model, _read_weights(Path(path), model))


def _read_weights(path: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, checked against ``model``'s names and shapes."""
    file = path / "model.safetensors"
    if not file.is_file():
        raise CheckpointError(f"no checkpoint weights at {file}")
    weights = _read(file, lambda f: load_file(str(f)))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise CheckpointError(f"checkpoint {path} holds tensors the model lacks: {missing[:3]}")
    wrong = [n for n, t in weights.items() if t.shape != params[n].shape]
    if wrong:
        n = wrong[0]
        raise CheckpointError(
            f"checkpoint {path}: {n} has shape {tuple(weights[n].shape)}, the model's is "
            f"{tuple(params[n].shape)} (another model or LoRA rank?)"
        )
    return weights


def _copy_into(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


def _read(file: Path, reader: Any) -> Any:
    """``reader(file)``, with any failure to read or parse it as a :class:`CheckpointError`."""
    try:
        return reader(file)
    except Exception as err:  # truncated zip, bad header, bad JSON, I/O error: all the same
        raise CheckpointError(f"{file} cannot be read ({type(err).__name__}: {err})") from err


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)}
        for f in sorted(folder.iterdir())
        if f.name != MANIFEST
    }


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
