"""The RL term: a policy-gradient surrogate on the sampled response tokens.

``-sum(w * A * log S(y))`` over response tokens, with the advantage ``A`` folded into the
per-token weights ``w`` by the caller (GRPO/RLOO group advantages per trajectory). Computed in
chunks like the distillation losses, so no ``[B, T, V]`` float32 log-softmax is kept.
"""

from __future__ import annotations

import torch

from mmopsd.losses.chunked import DEFAULT_CHUNK, token_values
from mmopsd.losses.reduce import Reduction, reduce, select


def _row_fn(s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    y = extras["ids"][:, None]
    return -(s.gather(1, y) - torch.logsumexp(s, -1, keepdim=True)).squeeze(1)


def policy_gradient(
    student_logits: torch.Tensor,
    mask: torch.Tensor,
    response_ids: torch.Tensor,
    *,
    weights: torch.Tensor,
    reduction: Reduction = "sum",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """``reduce(-w * log S(y))`` over the masked tokens.

    Args:
        student_logits: ``[B, T, V]``.
        mask: ``[B, T]`` response-token mask.
        response_ids: ``[B, T]`` the sampled ids.
        weights: ``[B, T]`` per-token weights carrying the advantages (may be negative).
        reduction: ``sum`` (default), ``token_mean`` or ``sequence_mean``.
        chunk_size: rows per chunk; None for the plain computation.
    """
    if response_ids.shape != mask.shape:
        raise ValueError(
            f"response_ids shape {tuple(response_ids.shape)} must equal mask shape "
            f"{tuple(mask.shape)}"
        )
    sel = select(student_logits, student_logits.detach(), mask, weights)
    extras = {"ids": response_ids.reshape(-1).index_select(0, sel.rows).long()}
    values = token_values(
        _row_fn, sel.student, sel.teacher, sel.rows, extras, chunk_size=chunk_size
    )
    return reduce(values, sel, reduction)
