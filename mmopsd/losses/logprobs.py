"""The per-token log-probability, written once: ``log softmax(logits)[ids]``."""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[ids]`` along the vocabulary: logits ``[..., V]`` and ids
    ``[...]`` give ``[...]`` (no ``[..., V]`` log-softmax is materialised)."""
    return logits.gather(-1, ids[..., None]).squeeze(-1) - logits.logsumexp(-1)
