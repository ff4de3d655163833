"""The provider interface: a student context plus privileged information -> teacher context.

A provider is one callable. It gets the student's messages for a turn, that turn's
``info["privileged"]`` and, for providers that need more, an :class:`Episode` view (the
trajectory so far, the other rollouts of its group, completed past trajectories). Built-ins
register by name; third-party packages add providers through the ``mmopsd.providers``
entry-point group (``name = "package.module:ProviderClass"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

from mmopsd.checks import call_checked
from mmopsd.errors import MmopsdError
from mmopsd.registry import Registry
from mmopsd.types import Message, TeacherContext, Trajectory, Turn

ENTRY_POINT_GROUP = "mmopsd.providers"


class MissingPrivilegedKey(MmopsdError, KeyError):
    """The environment did not supply a key a provider needs."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Episode:
    """What a provider may know beyond the turn itself.

    Attributes:
        trajectory: the trajectory the turn belongs to (its turns up to and after this one).
        turn_index: the turn's position in the trajectory.
        siblings: the other rollouts of the same group (same task and seed).
        past: completed earlier trajectories (for providers that learn from experience).
    """

    trajectory: Trajectory | None = None
    turn_index: int = 0
    siblings: tuple[Trajectory, ...] = ()
    past: tuple[Trajectory, ...] = ()

    @property
    def turn(self) -> Turn | None:
        """The turn itself, when the trajectory is known."""
        if self.trajectory is None or self.turn_index >= len(self.trajectory.turns):
            return None
        return self.trajectory.turns[self.turn_index]


class Provider(Protocol):
    """Builds the teacher's context for one turn."""

    name: str

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """Teacher messages from the student's ``messages`` and this turn's privileged info."""
        ...


PROVIDERS: Registry[type] = Registry("privileged-information provider")


class ReadsOneKey:
    """Mixin of providers that read one privileged field, ``self.key``: it is what the leak
    guard checks (a provider's optional ``keys`` attribute; without one every key is checked).
    """

    key: str

    @property
    def keys(self) -> list[str]:
        """The privileged keys this provider reads."""
        return [self.key]


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
    """Instantiate the provider registered under ``name`` (built-in, or from the
    ``mmopsd.providers`` entry-point group) with ``options``."""
    if name not in PROVIDERS:
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name == name:
                PROVIDERS.add(name, entry.load())
                break
    return call_checked("provider_kwargs", f"provider {name!r}", PROVIDERS.get(name), **options)


def last_user(messages: Sequence[Message]) -> int:
    """Index of the last user message (where privileged text is usually appended)."""
    index = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if index is None:
        raise ValueError("the student context has no user message to attach privileged info to")
    return index


def append_to_last_user(messages: Sequence[Message], text: str) -> list[Message]:
    """A copy of ``messages`` with ``text`` appended to the last user message."""
    out = list(messages)
    i = last_user(out)
    out[i] = out[i].with_text_appended(text)
    return out
