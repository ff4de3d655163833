"""The RL term: a policy-gradient surrogate on the sampled response tokens.

``-sum(w * A * log S(y))`` over response tokens, with the advantage ``A`` folded into the
per-token weights ``w`` by the caller (GRPO/RLOO group advantages per trajectory). Computed in
chunks like the distillation losses, so no ``[B, T, V]`` float32 log-softmax is kept.
"""

from __future__ import annotations

from functools import partial

import torch

from mmopsd.losses.chunked import DEFAULT_CHUNK, token_values
from mmopsd.losses.logprobs import token_logprobs
from mmopsd.losses.reduce import Reduction, reduce, select


def _row_fn(s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    return -token_logprobs(s, extras["ids"])


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


def _clipped_row_fn(
    s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor], *, eps: float
) -> torch.Tensor:
    logp = token_logprobs(s, extras["ids"])
    ratio = (logp - extras["old"]).clamp(-20, 20).exp()
    clipped = ratio.clamp(1 - eps, 1 + eps)
    # -min(r A, clip(r) A) with A's sign in the weight: min for A >= 0, max for A < 0.
    pessimistic = torch.where(
        extras["positive"], torch.minimum(ratio, clipped), torch.maximum(ratio, clipped)
    )
    return -pessimistic


def clipped_policy_gradient(
    student_logits: torch.Tensor,
    mask: torch.Tensor,
    response_ids: torch.Tensor,
    *,
    weights: torch.Tensor,
    old_logprobs: torch.Tensor,
    clip_eps: float = 0.2,
    reduction: Reduction = "sum",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """PPO's clipped surrogate ``reduce(-|w| * min(r A, clip(r, 1-eps, 1+eps) A) / |A|)``,
    written with the advantage folded into ``w``: per token
    ``-w * min(r, clip(r))`` where ``w >= 0`` and ``-w * max(r, clip(r))`` where ``w < 0``,
    ``r = exp(log S(y) - old_logprobs)``. With ``old_logprobs`` equal to the current
    log-probs (the first pass) its gradient is :func:`policy_gradient`'s.

    Args:
        student_logits: ``[B, T, V]``.
        mask: ``[B, T]`` response-token mask.
        response_ids: ``[B, T]`` the sampled ids.
        weights: ``[B, T]`` per-token weights carrying the advantages (may be negative).
        old_logprobs: ``[B, T]`` log-probs of the sampled ids when the batch was sampled.
        clip_eps: the clip range.
        reduction: ``sum`` (default), ``token_mean`` or ``sequence_mean``.
        chunk_size: rows per chunk; None for the plain computation.
    """
    sel = select(student_logits, student_logits.detach(), mask, weights)
    extras = {
        "ids": response_ids.reshape(-1).index_select(0, sel.rows).long(),
        "old": old_logprobs.reshape(-1).index_select(0, sel.rows),
        "positive": sel.weights >= 0,
    }
    fn = partial(_clipped_row_fn, eps=clip_eps)
    values = token_values(fn, sel.student, sel.teacher, sel.rows, extras, chunk_size=chunk_size)
    return reduce(values, sel, reduction)


def _k3_row_fn(s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    logp = token_logprobs(s, extras["ids"])
    gap = (extras["ref"] - logp).clamp(-20, 20)
    return gap.exp() - gap - 1


def kl_to_reference(
    student_logits: torch.Tensor,
    mask: torch.Tensor,
    response_ids: torch.Tensor,
    *,
    ref_logprobs: torch.Tensor,
    weights: torch.Tensor,
    reduction: Reduction = "sum",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """The k3 estimate of KL(S || reference) on the sampled tokens,
    ``reduce(w * (exp(ref - log S(y)) - (ref - log S(y)) - 1))`` (non-negative, unbiased for
    samples of S), as GRPO's penalty to the initial model."""
    sel = select(student_logits, student_logits.detach(), mask, weights)
    extras = {
        "ids": response_ids.reshape(-1).index_select(0, sel.rows).long(),
        "ref": ref_logprobs.reshape(-1).index_select(0, sel.rows),
    }
    values = token_values(
        _k3_row_fn, sel.student, sel.teacher, sel.rows, extras, chunk_size=chunk_size
    )
    return reduce(values, sel, reduction)
