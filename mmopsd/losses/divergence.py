"""Closed-form divergences between two log-probability rows over the same outcomes.

All functions map ``[n, K]`` log-probabilities to ``[n]`` values. Entries with probability 0
(``-inf``) are handled so that neither values nor gradients become NaN.
"""

from __future__ import annotations

import math

import torch


def kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_v p_v (log p_v - log q_v), per row. ``[n, K] -> [n]``."""
    p = logp.exp()
    if bool(torch.isneginf(logp).any()):
        # where() on the inputs, not the output: keeps -inf out of the gradient path.
        live = p > 0
        logp = torch.where(live, logp, torch.zeros_like(logp))
        logq = torch.where(live, logq, torch.zeros_like(logq))
    return (p * (logp - logq)).sum(-1)


def forward_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student): mode covering."""
    return kl(t, s)


def reverse_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """KL(student || teacher): mode seeking."""
    return kl(s, t)


def generalized_jsd(s: torch.Tensor, t: torch.Tensor, beta: float) -> torch.Tensor:
    """Generalised Jensen-Shannon divergence with mixture ``M = beta*T + (1-beta)*S``.

    ``JSD = beta * KL(T||M) + (1-beta) * KL(S||M)`` for ``0 < beta < 1``. The mixture form
    tends to 0 at both ends, so by convention (as in public trainers) the ends are the plain
    KLs: ``beta = 0`` is forward KL(T||S) and ``beta = 1`` is reverse KL(S||T).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"jsd beta must lie in [0, 1], got {beta}")
    if beta == 0.0:
        return forward_kl(s, t)
    if beta == 1.0:
        return reverse_kl(s, t)
    # Outcomes impossible on both sides stay impossible in M, with no NaN in the gradient.
    dead = torch.isneginf(s) & torch.isneginf(t)
    zero = torch.zeros_like(s)
    s_, t_ = torch.where(dead, zero, s), torch.where(dead, zero, t)
    m = torch.logaddexp(t_ + math.log(beta), s_ + math.log(1.0 - beta)).masked_fill(dead, -math.inf)
    return beta * kl(t, m) + (1.0 - beta) * kl(s, m)
