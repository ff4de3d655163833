"""``sft``: cross-entropy on the response ids (supervised fine-tuning on given tokens).

With ``actor: teacher`` the ids are the teacher's, sampled with privileged information, and
the student's logits are taken under its own context: off-policy distillation (the
``sft_teacher`` method). The teacher's logits are not used.
"""

from __future__ import annotations

import torch

from mmopsd.losses.chunked import DEFAULT_CHUNK
from mmopsd.losses.policy_gradient import policy_gradient
from mmopsd.losses.reduce import Reduction
from mmopsd.losses.registry import LOSSES


@LOSSES.register("sft")
def sft(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    mask: torch.Tensor,
    *,
    response_ids: torch.Tensor,
    weights: torch.Tensor | None = None,
    reduction: Reduction = "token_mean",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """``reduce(-log S(y))`` over the masked response tokens (``teacher_logits`` ignored).

    Args:
        student_logits: ``[B, T, V]``.
        teacher_logits: unused (the loss has the common signature).
        mask: ``[B, T]`` response-token mask.
        response_ids: ``[B, T]`` the target ids.
        weights: optional ``[B, T]`` per-token weights.
        reduction: ``token_mean``, ``sequence_mean`` or ``sum``.
        chunk_size: rows per chunk; None for the plain computation.
    """
    w = mask.to(student_logits.dtype) if weights is None else weights
    return policy_gradient(
        student_logits, mask, response_ids, weights=w, reduction=reduction, chunk_size=chunk_size
    )
