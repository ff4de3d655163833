"""Privileged-information providers: turn a turn's ``info["privileged"]`` into the teacher's
context. Select by name with :func:`build_provider`."""

from mmopsd.privileged import hint  # noqa: F401  (registers the built-ins)
from mmopsd.privileged.base import (
    PROVIDERS,
    MissingPrivilegedKey,
    Provider,
    build_provider,
    require,
)

__all__ = ["PROVIDERS", "MissingPrivilegedKey", "Provider", "build_provider", "require"]
