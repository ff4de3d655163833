"""Distillation losses, selected by name.

``mmopsd.losses.get(name)(student_logits, teacher_logits, mask, **options) -> scalar`` with
logits ``[B, T, V]`` and mask ``[B, T]`` (1 = response token to train).

Names: ``forward_kl``, ``reverse_kl``, ``jsd`` (option ``beta``), ``sampled_reverse_kl``
(option ``response_ids``). Register your own with ``@mmopsd.losses.register("name")``.
"""

from __future__ import annotations

from mmopsd.losses import closed_form, cross_entropy, sampled  # noqa: F401  (registers the built-ins)
from mmopsd.losses.registry import LOSSES, LossFn
from mmopsd.losses.weighting import WEIGHTINGS, position_weights, tip_weights


def get(name: str) -> LossFn:
    """The loss registered under ``name``; unknown names list the available ones."""
    return LOSSES.get(name)


def register(name: str):
    """Decorator adding a loss ``fn(student_logits, teacher_logits, mask, **options)``."""
    return LOSSES.register(name)


def names() -> list[str]:
    """Registered loss names."""
    return LOSSES.names()


__all__ = ["WEIGHTINGS", "get", "names", "position_weights", "register", "tip_weights"]
