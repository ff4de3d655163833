"""Per-token values of a row function over masked positions, computed in chunks.

A full-vocabulary loss on ``[B, T, V]`` logits with V = 151,936 would keep several float32
``[B, T, V]`` temporaries alive (log-softmaxes, probabilities, differences). Here the row
function runs on ``chunk_size`` selected rows at a time, and its gradient with respect to the
student rows is computed right away and written into one buffer the size of the student logits
(the gradient has to exist anyway). Teacher logits are constants.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RowFn = Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]
"""``row_fn(student_rows [n, V] f32, teacher_rows [n, V] f32, extras {name: [n]}) -> [n]``."""

DEFAULT_CHUNK = 256


def token_values(
    row_fn: RowFn,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    rows: torch.Tensor,
    extras: dict[str, torch.Tensor] | None = None,
    *,
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Values of ``row_fn`` at the selected rows.

    Args:
        row_fn: per-row function, computed in float32 (float64 for float64 input).
        student_logits: ``[M, V]`` (any float dtype; may require grad).
        teacher_logits: ``[M, V]`` constants.
        rows: ``[N]`` indices into the M rows (the masked response tokens).
        extras: per-row side data ``[N]`` (e.g. sampled token ids), passed chunk by chunk.
        chunk_size: rows per chunk; ``None`` computes everything at once with plain autograd
            (the reference path, several ``[N, V]`` float32 temporaries).

    Returns:
        ``[N]`` values (float32, or float64 for float64 logits), differentiable with
        respect to ``student_logits``.
    """
    extras = extras or {}
    if chunk_size is None:
        dtype = compute_dtype(student_logits)
        s = student_logits.index_select(0, rows).to(dtype)
        t = teacher_logits.index_select(0, rows).to(dtype)
        return row_fn(s, t, extras)
    return _Chunked.apply(student_logits, teacher_logits, rows, row_fn, extras, chunk_size)


def compute_dtype(logits: torch.Tensor) -> torch.dtype:
    """float32 for half-precision logits, float64 kept as float64."""
    return torch.promote_types(logits.dtype, torch.float32)


class _Chunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, student, teacher, rows, row_fn, extras, chunk_size):  # type: ignore[override]
        n = rows.numel()
        dtype = compute_dtype(student)
        values = torch.empty(n, dtype=dtype, device=student.device)
        need_grad = ctx.needs_input_grad[0]
        grad = torch.zeros_like(student) if need_grad else None  # [M, V]
        for start in range(0, n, chunk_size):
            idx = rows[start : start + chunk_size]
            part = {k: v[start : start + chunk_size] for k, v in extras.items()}
            s = student.index_select(0, idx).to(dtype)  # [c, V]
            t = teacher.index_select(0, idx).to(dtype)
            if need_grad:
                with torch.enable_grad():
                    s.requires_grad_(True)
                    v = row_fn(s, t, part)
                    (g,) = torch.autograd.grad(v.sum(), s)
                grad.index_copy_(0, idx, g.to(grad.dtype))
            else:
                v = row_fn(s, t, part)
            values[start : start + chunk_size] = v.detach()
        ctx.save_for_backward(rows, grad if need_grad else torch.empty(0))
        ctx.num_rows = student.shape[0]
        return values

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):  # type: ignore[override]
        rows, grad = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        scale = torch.zeros(ctx.num_rows, dtype=grad.dtype, device=grad.device)
        scale.index_copy_(0, rows, grad_values.to(grad.dtype))
        return grad.mul_(scale[:, None]), None, None, None, None, None
