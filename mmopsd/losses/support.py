"""Probability support of a divergence: the full vocabulary, or a top-k subset.

A support function turns raw logit rows into two log-probability rows over the same outcomes:
``(student_logp [n, K], teacher_logp [n, K])``. Outcomes may carry ``-inf`` (probability 0),
e.g. duplicates removed from a union support or an empty tail bucket.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

SupportFrom = Literal["teacher", "student", "union"]


def full_vocab(s_logits: torch.Tensor, t_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-softmax of both sides over the whole vocabulary. Shapes ``[n, V] -> [n, V]``."""
    return F.log_softmax(s_logits, dim=-1), F.log_softmax(t_logits, dim=-1)


def top_k(
    s_logits: torch.Tensor,
    t_logits: torch.Tensor,
    *,
    k: int,
    support: SupportFrom = "teacher",
    tail: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Restrict both distributions to a top-k support.

    Args:
        s_logits: student logits ``[n, V]``.
        t_logits: teacher logits ``[n, V]`` (constants).
        k: number of entries taken from each side's top list.
        support: whose top-k defines the support: ``teacher``, ``student`` or their ``union``.
        tail: if True, keep the full-vocabulary probabilities on the support and add one bucket
            holding the remaining mass ``1 - sum_topk p``; if False, renormalise on the support.

    Returns:
        ``(student_logp, teacher_logp)``, each ``[n, K]`` (``K = k``, ``2k`` for union, ``+1``
        with a tail). Duplicate union entries carry ``-inf`` on both sides.
    """
    vocab = s_logits.shape[-1]
    k = min(k, vocab)
    idx, dup = _support_indices(s_logits, t_logits, k, support)  # [n, K], [n, K]
    covers_all = k >= vocab and support != "union"
    if tail and not covers_all:
        s_full, t_full = F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1)
        s_sup = s_full.gather(1, idx).masked_fill(dup, float("-inf"))
        t_sup = t_full.gather(1, idx).masked_fill(dup, float("-inf"))
        outside = torch.ones_like(s_full, dtype=torch.bool).scatter_(1, idx, False)  # [n, V]
        s_tail = torch.logsumexp(s_full.masked_fill(~outside, float("-inf")), -1, keepdim=True)
        t_tail = torch.logsumexp(t_full.masked_fill(~outside, float("-inf")), -1, keepdim=True)
        return torch.cat([s_sup, s_tail], -1), torch.cat([t_sup, t_tail], -1)
    s_sup = s_logits.gather(1, idx).masked_fill(dup, float("-inf"))
    t_sup = t_logits.gather(1, idx).masked_fill(dup, float("-inf"))
    return F.log_softmax(s_sup, -1), F.log_softmax(t_sup, -1)


def _support_indices(
    s_logits: torch.Tensor, t_logits: torch.Tensor, k: int, support: SupportFrom
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vocabulary indices of the support ``[n, K]`` and a mask of duplicates ``[n, K]``."""
    if support == "teacher":
        idx = t_logits.topk(k, dim=-1).indices
    elif support == "student":
        idx = s_logits.detach().topk(k, dim=-1).indices
    elif support == "union":
        both = torch.cat(
            [t_logits.topk(k, dim=-1).indices, s_logits.detach().topk(k, dim=-1).indices], -1
        )
        idx = both.sort(dim=-1).values
        dup = torch.zeros_like(idx, dtype=torch.bool)
        dup[:, 1:] = idx[:, 1:] == idx[:, :-1]
        return idx, dup
    else:
        raise ValueError(f"top_k support must be 'teacher', 'student' or 'union', got {support!r}")
    return idx, torch.zeros_like(idx, dtype=torch.bool)
