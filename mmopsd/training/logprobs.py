"""Per-token log-probs of given ids, row by row (no ``[B, R, V]`` float copy)."""

from __future__ import annotations

import torch

from mmopsd.losses.logprobs import token_logprobs


@torch.no_grad()
def token_logprobs_rows(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[ids]`` per token, ``[B, R]``, one row at a time."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    out = torch.empty(ids.shape, dtype=dtype, device=logits.device)
    for i in range(ids.shape[0]):
        row = logits[i].to(dtype)
        out[i] = token_logprobs(row, ids[i])
    return out
