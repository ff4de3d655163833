"""Full-distribution distillation losses: forward KL, reverse KL and generalised JSD.

Each loss has the public signature
``loss(student_logits [B,T,V], teacher_logits [B,T,V], mask [B,T], **options) -> scalar``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from mmopsd.losses import divergence, support
from mmopsd.losses.chunked import DEFAULT_CHUNK, token_values
from mmopsd.losses.reduce import Reduction, reduce, select
from mmopsd.losses.registry import LOSSES

Divergence = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _row_fn(
    div: Divergence,
    s: torch.Tensor,
    t: torch.Tensor,
    extras: dict[str, torch.Tensor],
    *,
    top_k: int | None,
    top_k_from: support.SupportFrom,
    tail: bool,
    clip: float | None,
) -> torch.Tensor:
    if top_k is None:
        s_lp, t_lp = support.full_vocab(s, t)
    else:
        s_lp, t_lp = support.top_k(s, t, k=top_k, support=top_k_from, tail=tail)
    v = div(s_lp, t_lp)  # [n]
    return v if clip is None else v.clamp(max=clip)


def divergence_loss(
    div: Divergence,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    top_k: int | None = None,
    top_k_from: support.SupportFrom = "teacher",
    tail: bool = False,
    clip: float | None = None,
    reduction: Reduction = "token_mean",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """A closed-form divergence averaged over response tokens.

    Args:
        div: divergence of two log-probability rows (``divergence.forward_kl`` etc.).
        student_logits: ``[B, T, V]`` logits at the response positions.
        teacher_logits: ``[B, T, V]`` constants, aligned on the same response ids.
        mask: ``[B, T]``, 1 for response tokens to train.
        weights: optional ``[B, T]`` per-token weights.
        top_k: restrict to a top-k support (None = full vocabulary).
        top_k_from: ``teacher``, ``student`` or ``union`` top-k.
        tail: add a bucket with the mass outside the support instead of renormalising.
        clip: cap on the per-token divergence (gradient is zero above the cap).
        reduction: ``token_mean``, ``sequence_mean`` or ``sum``.
        chunk_size: rows per chunk; None for the plain, unchunked computation.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    sel = select(student_logits, teacher_logits, mask, weights)
    fn = partial(_row_fn, div, top_k=top_k, top_k_from=top_k_from, tail=tail, clip=clip)
    values = token_values(fn, sel.student, sel.teacher, sel.rows, chunk_size=chunk_size)
    return reduce(values, sel, reduction)


@LOSSES.register("forward_kl")
def forward_kl(student_logits, teacher_logits, mask, **options) -> torch.Tensor:
    """KL(teacher || student) per response token (mode covering). Options: see
    :func:`divergence_loss`."""
    return divergence_loss(divergence.forward_kl, student_logits, teacher_logits, mask, **options)


@LOSSES.register("reverse_kl")
def reverse_kl(student_logits, teacher_logits, mask, **options) -> torch.Tensor:
    """KL(student || teacher) per response token (mode seeking). Options: see
    :func:`divergence_loss`."""
    return divergence_loss(divergence.reverse_kl, student_logits, teacher_logits, mask, **options)


@LOSSES.register("jsd")
def jsd(student_logits, teacher_logits, mask, *, beta: float = 0.5, **options) -> torch.Tensor:
    """Generalised JSD with mixture ``beta*T + (1-beta)*S``; ``beta=0`` is forward KL and
    ``beta=1`` reverse KL (see :func:`mmopsd.losses.divergence.generalized_jsd`)."""
    div = partial(divergence.generalized_jsd, beta=float(beta))
    return divergence_loss(div, student_logits, teacher_logits, mask, **options)
