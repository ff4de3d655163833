"""Exceptions raised by mmopsd. Each message names the problem and how to fix it."""

from __future__ import annotations

from pathlib import Path


class MmopsdError(Exception):
    """Base class of every error mmopsd raises on purpose."""


class UnknownNameError(MmopsdError, ValueError):
    """A name (loss, model alias, teacher, provider, ...) is not registered."""


class ConfigError(MmopsdError, ValueError):
    """A configuration value is missing, mistyped or out of range."""


class AlignmentError(MmopsdError, ValueError):
    """Teacher and student inputs do not line up on identical response ids."""


class ModelNotFoundError(MmopsdError, FileNotFoundError):
    """A model could not be found locally (nothing is downloaded at run time)."""


class CheckpointError(MmopsdError):
    """A checkpoint's files are missing, truncated, corrupt or do not fit the model."""


class ServerError(MmopsdError, ConnectionError):
    """An inference server is unreachable, refused a request or does not serve the model."""


class MmopsdWarning(UserWarning):
    """Base class of the warnings mmopsd gives (the CLI prints them as one line each)."""


def writable_file(path: Path, fix: str) -> None:
    """``path`` can be written as a file: a folder in its place is a :class:`ConfigError`
    ending in ``fix``; its own folder is created (checked before any work, so no result is
    lost to a bad output path)."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; {fix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the folder of {path}: {err.strerror}") from err
