"""Sampled-token (policy-gradient) reverse KL.

On the sampled response token ``y_t`` the reward is ``r_t = log T(y_t) - log S(y_t)``, whose
expectation under the student is ``-KL(S||T)``. The surrogate ``-r_t.detach() * log S(y_t)``
has the reverse-KL gradient in expectation: cheap (no vocabulary-sized math is needed without
a baseline) and unbiased, but noisy. The optional control variate subtracts that expectation
per token (``r_t + KL_t(S||T)``, detached), as in vOPD.
"""

from __future__ import annotations

from functools import partial

import torch

from mmopsd.losses import divergence, support
from mmopsd.losses.chunked import DEFAULT_CHUNK, token_values
from mmopsd.losses.logprobs import token_logprobs
from mmopsd.losses.reduce import Reduction, reduce, select
from mmopsd.losses.registry import LOSSES


def _row_fn(
    s: torch.Tensor,
    t: torch.Tensor,
    extras: dict[str, torch.Tensor],
    *,
    baseline: bool,
    clip: float | None,
) -> torch.Tensor:
    s_tok = token_logprobs(s, extras["ids"])  # log S(y) [n]
    with torch.no_grad():
        t_tok = token_logprobs(t, extras["ids"])
        adv = t_tok - s_tok
        if baseline:
            adv = adv + divergence.reverse_kl(*support.full_vocab(s, t))
        if clip is not None:
            adv = adv.clamp(-clip, clip)
        if "old" in extras:
            # Truncated importance weight for rollouts sampled by a stale policy.
            adv = adv * (s_tok - extras["old"]).clamp(-20, 20).exp().clamp(max=2.0)
    return -adv * s_tok


@LOSSES.register("sampled_reverse_kl")
def sampled_reverse_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    *,
    response_ids: torch.Tensor,
    baseline: bool = False,
    old_logprobs: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    clip: float | None = None,
    reduction: Reduction = "token_mean",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Policy-gradient reverse KL on the sampled tokens.

    Args:
        student_logits: ``[B, T, V]``.
        teacher_logits: ``[B, T, V]`` constants.
        mask: ``[B, T]`` response-token mask.
        response_ids: ``[B, T]`` the sampled token ids the logits predict.
        baseline: subtract the per-token closed-form reverse KL (control variate).
        old_logprobs: ``[B, T]`` log-probs of the sampling policy, for truncated importance
            weights ``min(exp(log S - old), 2)`` when rollouts come from a stale policy.
        weights: optional ``[B, T]`` per-token weights.
        clip: cap on ``|advantage|`` per token.
        reduction: ``token_mean``, ``sequence_mean`` or ``sum``.
        chunk_size: rows per chunk; None for the plain computation.
    """
    if response_ids.shape != mask.shape:
        raise ValueError(
            f"response_ids shape {tuple(response_ids.shape)} must equal mask shape "
            f"{tuple(mask.shape)}"
        )
    sel = select(student_logits, teacher_logits, mask, weights)
    extras = {"ids": response_ids.reshape(-1).index_select(0, sel.rows).long()}
    if old_logprobs is not None:
        extras["old"] = old_logprobs.reshape(-1).index_select(0, sel.rows)
    fn = partial(_row_fn, baseline=baseline, clip=clip)
    values = token_values(fn, sel.student, sel.teacher, sel.rows, extras, chunk_size=chunk_size)
    return reduce(values, sel, reduction)
