"""Input checks, token selection and reductions shared by every loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Reduction = Literal["token_mean", "sequence_mean", "sum"]
REDUCTIONS = ("token_mean", "sequence_mean", "sum")


@dataclass
class Selected:
    """The masked response tokens of a batch, flattened.

    Attributes:
        student: student logits viewed as ``[B*T, V]``.
        teacher: teacher logits viewed as ``[B*T, V]``.
        rows: ``[N]`` flat indices of the response tokens.
        seq: ``[N]`` sequence index of each selected token.
        weights: ``[N]`` per-token weights (float32, or float64 for float64 weights).
        batch: B.
    """

    student: torch.Tensor
    teacher: torch.Tensor
    rows: torch.Tensor
    seq: torch.Tensor
    weights: torch.Tensor
    batch: int


def select(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> Selected:
    """Validate shapes and pick out the response tokens (``mask == 1``)."""
    check_logits(student_logits, teacher_logits, mask)
    b, t, v = student_logits.shape
    flat_mask = mask.reshape(-1).bool()
    rows = flat_mask.nonzero().squeeze(1)
    if weights is None:
        w = torch.ones(rows.numel(), dtype=torch.float32, device=student_logits.device)
    else:
        if weights.shape != mask.shape:
            raise ValueError(
                f"weights shape {tuple(weights.shape)} must equal mask shape {tuple(mask.shape)}"
            )
        dtype = torch.promote_types(weights.dtype, torch.float32)  # float64 stays float64
        w = weights.reshape(-1).to(dtype).index_select(0, rows)
    return Selected(
        student=student_logits.reshape(b * t, v),
        teacher=teacher_logits.reshape(b * t, v).detach(),
        rows=rows,
        seq=torch.div(rows, t, rounding_mode="floor"),
        weights=w,
        batch=b,
    )


def check_logits(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise a clear error unless logits are ``[B, T, V]`` twins and mask is ``[B, T]``."""
    if student.dim() != 3:
        raise ValueError(f"student logits must be [B, T, V], got shape {tuple(student.shape)}")
    if teacher.shape != student.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher.shape)} and student logits {tuple(student.shape)} "
            "differ: score both on the identical response ids (Policy.score)"
        )
    if teacher.requires_grad:
        raise ValueError("teacher logits must not require grad: compute them under no_grad")
    if tuple(mask.shape) != tuple(student.shape[:2]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must be [B, T] = {tuple(student.shape[:2])} "
            "(1 = response token to train, 0 = prompt or padding)"
        )


def reduce(values: torch.Tensor, sel: Selected, reduction: Reduction) -> torch.Tensor:
    """Reduce per-token values ``[N]`` to a scalar; weights act as a weighted mean.

    - ``token_mean``: ``sum(w*v) / sum(w)`` over all response tokens of the batch.
    - ``sequence_mean``: the same within each sequence, then the mean over sequences that
      have any weight.
    - ``sum``: ``sum(w*v)``.

    An empty selection gives a zero that still carries the student's graph.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
    zero = sel.student.sum() * 0.0
    w = sel.weights.to(values.dtype)
    if values.numel() == 0:
        return zero
    wv = w * values
    if reduction == "sum":
        return wv.sum() + zero
    if reduction == "token_mean":
        return wv.sum() / w.sum().clamp_min(1e-12) + zero
    num = torch.zeros(sel.batch, dtype=wv.dtype, device=wv.device).index_add(0, sel.seq, wv)
    den = torch.zeros(sel.batch, dtype=wv.dtype, device=wv.device).index_add(0, sel.seq, w)
    has = den > 0
    if not bool(has.any()):
        return zero
    return (num[has] / den[has]).mean() + zero
