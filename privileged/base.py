"""The provider interface: a student context plus privileged information -> teacher context.

A provider subclasses :class:`Provider` and implements ``__call__``. It gets the student's
messages for a turn, that turn's ``info["privileged"]`` and, for providers that need more, an
:class:`Episode` view (the trajectory so far and the other rollouts of its group). The
optional hooks (``keys``, ``static``, ``bind``, ``reset``, ``observe``) are declared on
:class:`Provider` with no-op defaults. Built-ins
register by name; third-party packages add providers through the ``mmopsd.providers``
entry-point group (``name = "package.module:ProviderClass"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mmopsd.checks import call_checked
from mmopsd.errors import ConfigError, MmopsdError
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
    """

    trajectory: Trajectory | None = None
    turn_index: int = 0
    siblings: tuple[Trajectory, ...] = ()

    @property
    def turn(self) -> Turn | None:
        """The turn itself, when the trajectory is known."""
        if self.trajectory is None or self.turn_index >= len(self.trajectory.turns):
            return None
        return self.trajectory.turns[self.turn_index]


class Provider:
    """Builds the teacher's context for one turn; subclass it to write a provider.

    :meth:`__call__` is the one method to implement. Every other hook has a no-op default
    that a provider overrides when it needs it; the trainer calls each of them at the point
    its docstring names, and never looks for hooks any other way.

    Attributes:
        name: the name the provider is registered under (``provider:`` in a config).
        static: True when the teacher's view of a turn never changes during training, so a
            frozen teacher's evaluation with this provider is computed once per run; a
            provider that learns (a skill library) sets it False.
    """

    name: str = ""
    static: bool = True

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """Teacher messages from the student's ``messages`` and this turn's privileged info."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    @property
    def keys(self) -> Sequence[str] | None:
        """The privileged keys this provider reads: what the leak guard checks in every
        student context (None, the default, checks every key)."""
        return None

    def bind(self, policy: Any, out_dir: str | Path | None = None) -> None:
        """Called once after the model is built, before anything runs: a provider that
        generates (skill summaries) keeps the policy, and may write under ``out_dir``."""

    def reset(self) -> None:
        """Called when a fresh run starts (not on resume): a provider with state empties it."""

    def observe(self, trajectories: Sequence[Trajectory], step: int) -> None:
        """Called after the teacher views of training step ``step`` are built, with the
        step's whole batch: a provider that learns from experience updates itself here."""


PROVIDERS: Registry[type] = Registry("privileged-information provider")


class ReadsOneKey(Provider):
    """Base of providers that read one privileged field, ``self.key``: it is what the leak
    guard checks."""

    key: str

    @property
    def keys(self) -> Sequence[str] | None:
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
    provider = call_checked("provider_kwargs", f"provider {name!r}", PROVIDERS.get(name), **options)
    if not isinstance(provider, Provider):
        raise ConfigError(
            f"provider {name!r} ({type(provider).__name__}) is not a "
            "mmopsd.privileged.Provider: subclass it, which declares the hooks the trainer "
            "calls (keys, bind, reset, observe, static) with no-op defaults"
        )
    return provider


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
