"""Fail-early checks of a run's names and options, before any model loads.

A mistake in a config (an unknown option, a value out of range) should cost the user one
second and one clear line, not a model load and a traceback. These helpers call each
component the config names once, on tiny inputs where it needs them, and turn what it
rejects into a :class:`~mmopsd.errors.ConfigError` that names the config field to fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from mmopsd.errors import ConfigError, MmopsdError

T = TypeVar("T")


def accepted_options(fn: Callable[..., Any], inputs: int = 0) -> list[str] | None:
    """The keyword options ``fn`` accepts after its first ``inputs`` positional inputs, or
    None when it takes any keyword (``**kwargs`` that are passed on, not ``**_``)."""
    params = list(inspect.signature(fn).parameters.values())[inputs:]
    names = []
    for p in params:
        if p.kind is p.VAR_KEYWORD and p.name != "_":
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
    return names


def check_keys(field: str, what: str, options: Mapping[str, Any], known: list[str]) -> None:
    """Raise a :class:`ConfigError` naming ``field`` for options ``what`` does not take."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise ConfigError(
            f"{field} has {', '.join(map(repr, unknown))}, which {what} does not take; "
            f"its options are: {listed}"
        )


def call_checked(
    field: str,
    what: str,
    fn: Callable[..., T],
    *args: Any,
    fixed: Mapping[str, Any] | None = None,
    **options: Any,
) -> T:
    """``fn(*args, **fixed, **options)``; unknown options and rejected values become one
    :class:`ConfigError` that names ``field`` (e.g. ``teacher_kwargs``) and ``what``.

    Args:
        field: the config field the options come from.
        what: the component, for the message (``"teacher 'ema'"``).
        fn: the factory or function to call.
        args: its positional inputs.
        fixed: keyword inputs that are not the user's options.
        options: the user's options.
    """
    fixed = dict(fixed or {})
    try:
        known = accepted_options(fn, len(args))
    except (TypeError, ValueError):  # no signature (a builtin): let the call decide
        known = None
    if known is not None:
        check_keys(field, what, options, [k for k in known if k not in fixed])
    try:
        return fn(*args, **fixed, **options)
    except MmopsdError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{field} {dict(options)} rejected by {what}: {err}") from err


def check_loss(name: str, fn: Callable[..., torch.Tensor], options: dict[str, Any]) -> None:
    """Run the loss once on a ``[1, 2, 8]`` batch with the user's ``loss_kwargs``."""
    s, t, mask = torch.zeros(1, 2, 8), _ramp(), torch.ones(1, 2)
    fixed: dict[str, Any] = {"reduction": "sum"}
    if needs_ids(fn):
        fixed["response_ids"] = torch.zeros(1, 2, dtype=torch.long)
    call_checked("method.loss_kwargs", f"loss {name!r}", fn, s, t, mask, fixed=fixed, **options)


def needs_ids(fn: Callable[..., torch.Tensor]) -> bool:
    """Whether a loss takes the response ids (``response_ids``: sampled-token losses, sft)."""
    return "response_ids" in inspect.signature(fn).parameters


def check_token_weighting(name: str, fn: Callable[..., torch.Tensor], options: dict) -> None:
    """Run the token weighting once on a tiny batch with the user's ``weighting_kwargs``."""
    fixed = {"student_logits": torch.zeros(1, 2, 8), "teacher_logits": _ramp()}
    what = f"token weighting {name!r}"
    call_checked("method.weighting_kwargs", what, fn, torch.ones(1, 2), fixed=fixed, **options)


def check_turn_weighting(name: str, fn: Callable[..., list[float]], options: dict) -> None:
    """Run the turn weighting once on two turns with the user's ``turn_weighting_kwargs``."""
    what = f"turn weighting {name!r}"
    fixed = {"divergences": [0.5, 0.25]}
    call_checked("method.turn_weighting_kwargs", what, fn, 2, fixed=fixed, **options)


def _ramp() -> torch.Tensor:
    """Fixed, non-uniform ``[1, 2, 8]`` logits (no draw from the global generator, so a
    check never shifts a seeded run)."""
    return torch.arange(16, dtype=torch.float32).reshape(1, 2, 8) / 4
