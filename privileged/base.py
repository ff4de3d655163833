"""The provider interface: a student context plus privileged information -> teacher context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mmopsd.errors import MmopsdError
from mmopsd.registry import Registry
from mmopsd.types import Message, TeacherContext


class MissingPrivilegedKey(MmopsdError, KeyError):
    """The environment did not supply a key a provider needs."""

    def __str__(self) -> str:
        return str(self.args[0])


class Provider(Protocol):
    """Builds the teacher's context for one turn."""

    name: str

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
    ) -> TeacherContext:
        """Teacher messages from the student's ``messages`` and this turn's privileged info."""
        ...


PROVIDERS: Registry[type] = Registry("privileged-information provider")


def require(privileged: Mapping[str, Any], key: str, provider: str) -> Any:
    """``privileged[key]``, or an error naming the key and the provider."""
    if key not in privileged:
        have = ", ".join(sorted(privileged)) or "nothing"
        raise MissingPrivilegedKey(
            f"provider {provider!r} needs info['privileged'][{key!r}], but the environment "
            f"supplied {have}; add it in the environment's step/reset info or pick another provider"
        )
    return privileged[key]


def build_provider(name: str, **options: Any) -> Provider:
    """Instantiate the provider registered under ``name`` with ``options``."""
    return PROVIDERS.get(name)(**options)
