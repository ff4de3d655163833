"""One distillation pass over a batch of turns: score both sides on identical ids, loss,
backward. This is the heart of on-policy self-distillation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mmopsd.losses.weighting import WEIGHTINGS
from mmopsd.policies.base import Policy
from mmopsd.teachers import Teacher
from mmopsd.types import Encoded, Turn


@dataclass
class LossSpec:
    """A loss and its options, plus an optional token weighting."""

    fn: Callable[..., torch.Tensor]
    options: dict[str, Any] = field(default_factory=dict)
    weighting: str = "none"
    weighting_options: dict[str, Any] = field(default_factory=dict)
    needs_ids: bool = False


def distill_backward(
    student: Policy,
    teacher: Teacher,
    turns: Sequence[Turn],
    teacher_prompts: Sequence[Encoded],
    loss: LossSpec,
    *,
    micro_batch_size: int,
) -> dict[str, float]:
    """Accumulate gradients of the loss over ``turns`` in micro-batches.

    Each micro-batch's loss is scaled by its share of the turns, so the accumulated gradient
    is that of the mean over micro-batches (equal to one big batch for ``token_mean`` when
    micro-batches hold equal token counts).
    """
    total, n = 0.0, len(turns)
    tokens = 0
    for start in range(0, n, micro_batch_size):
        part = turns[start : start + micro_batch_size]
        responses = [t.response_ids for t in part]
        # Teacher first: its temporaries are freed before the student's activations are kept.
        target = teacher.score(teacher_prompts[start : start + micro_batch_size], responses)
        scored = student.score([t.prompt for t in part], responses)  # with grad
        mask = scored.mask * _response_mask(part, scored.mask)
        options = dict(loss.options)
        if loss.needs_ids:
            options["response_ids"] = scored.ids
        if loss.weighting != "none":
            options["weights"] = WEIGHTINGS.get(loss.weighting)(
                mask,
                student_logits=scored.logits,
                teacher_logits=target.logits,
                **loss.weighting_options,
            )
        value = loss.fn(scored.logits, target.logits, mask, **options)
        (value * len(part) / n).backward()
        total += value.item() * len(part) / n
        tokens += int(mask.sum())
    return {"loss": total, "tokens": float(tokens)}


def _response_mask(turns: Sequence[Turn], like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(like)
    for i, t in enumerate(turns):
        m = t.response_mask or []
        out[i, : len(m)] = torch.tensor(m, dtype=like.dtype)
    return out
