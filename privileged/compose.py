"""``compose``: several providers into one teacher context, or one context per provider.

- ``chain``: each provider adds its information to the context the previous one built (for
  example a reference solution plus environment feedback).
- ``views``: one teacher context per provider (multi-view); the trainer distils the student
  toward each view and averages the losses with ``weights``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmopsd.privileged.base import PROVIDERS, Episode, Provider, build_provider

from mmopsd.types import Message, TeacherContext, Trajectory


@PROVIDERS.register("compose")
class ComposeProvider(Provider):
    """Combine providers.

    Args:
        providers: ``[{"name": "hint", ...options}, ...]`` or provider instances.
        mode: ``chain`` or ``views``.
        weights: per-view loss weights (``views``; default equal, normalised to sum 1).
    """

    name = "compose"

    def __init__(
        self,
        providers: Sequence[Mapping[str, Any] | Provider],
        mode: str = "chain",
        weights: Sequence[float] | None = None,
    ) -> None:
        if mode not in ("chain", "views"):
            raise ValueError(f"compose mode must be 'chain' or 'views', got {mode!r}")
        if not providers:
            raise ValueError("compose needs at least one provider")
        self.providers = [_build(p) for p in providers]
        self.mode = mode
        raw = list(weights) if weights is not None else [1.0] * len(self.providers)
        if len(raw) != len(self.providers) or min(raw) < 0 or sum(raw) <= 0:
            raise ValueError(
                f"compose weights must be {len(self.providers)} non-negative numbers with a "
                f"positive sum, got {raw}"
            )
        self.weights = [w / sum(raw) for w in raw]

    @property
    def keys(self) -> Sequence[str] | None:
        """The privileged keys the composed providers read (None, every key, as soon as one
        of them reads every key)."""
        keys = [p.keys for p in self.providers]
        return None if any(k is None for k in keys) else [x for k in keys for x in k]

    @property
    def static(self) -> bool:  # type: ignore[override]
        """Static while every composed provider is."""
        return all(p.static for p in self.providers)

    def bind(self, policy: Any, out_dir: str | Path | None = None) -> None:
        """Bind every composed provider."""
        for p in self.providers:
            p.bind(policy, out_dir)

    def reset(self) -> None:
        """Reset every composed provider."""
        for p in self.providers:
            p.reset()

    def observe(self, trajectories: Sequence[Trajectory], step: int) -> None:
        """Let every composed provider observe the step."""
        for p in self.providers:
            p.observe(trajectories, step)

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The chained context, or (``views``) the first view holding all views."""
        if self.mode == "chain":
            current = list(messages)
            for p in self.providers:
                ctx = p(current, privileged, assistant_prefix=assistant_prefix, episode=episode)
                current = ctx.messages
            return TeacherContext(current, assistant_prefix, self.name)
        views = [
            p(messages, privileged, assistant_prefix=assistant_prefix, episode=episode)
            for p in self.providers
        ]
        return TeacherContext(
            views[0].messages,
            assistant_prefix,
            self.name,
            views=views,
            weights=list(self.weights),
        )


def _build(spec: Mapping[str, Any] | Provider) -> Provider:
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "name" not in options:
            raise ValueError(f"each composed provider needs a 'name', got {dict(spec)}")
        return build_provider(options.pop("name"), **options)
    return spec
