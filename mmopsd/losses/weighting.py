"""Per-token weightings: position-increasing (PW-OPSD) and token selection (TIP).

Each returns ``[B, T]`` float32 weights to pass as ``weights=`` to any loss.
"""

from __future__ import annotations

import math

import torch

from mmopsd.losses import divergence, support
from mmopsd.losses.chunked import DEFAULT_CHUNK, token_values
from mmopsd.losses.reduce import select
from mmopsd.registry import Registry

WEIGHTINGS: Registry = Registry("token weighting")


@WEIGHTINGS.register("position")
def position_weights(
    mask: torch.Tensor, *, power: float = 1.0, floor: float = 0.0, **_: object
) -> torch.Tensor:
    """Weights growing with the position inside each response.

    ``w_j = floor + (1 - floor) * ((j + 1) / R) ** power`` for the j-th response token
    (0-based) of a response with R tokens; masked positions get 0.

    Args:
        mask: ``[B, T]`` response mask.
        power: shape of the ramp (1 = linear).
        floor: weight given at the start of a response's ramp, in [0, 1].
    """
    m = mask.float()
    pos = m.cumsum(-1)  # 1-based position among response tokens
    length = m.sum(-1, keepdim=True).clamp_min(1.0)
    return (floor + (1.0 - floor) * (pos / length).pow(power)) * m


@WEIGHTINGS.register("tip")
@torch.no_grad()
def tip_weights(
    mask: torch.Tensor,
    *,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    keep: float = 0.5,
    chunk_size: int | None = DEFAULT_CHUNK,
    **_: object,
) -> torch.Tensor:
    """Token importance selection (TIP): 0/1 weights keeping a fraction of the tokens.

    Half of the kept budget goes to the tokens of highest student entropy; the other half
    to the tokens of highest divergence (reverse KL) among the low-entropy ones (entropy at
    or below the median); any budget left is filled by divergence among the rest.

    Args:
        mask: ``[B, T]`` response mask.
        student_logits: ``[B, T, V]``.
        teacher_logits: ``[B, T, V]``.
        keep: fraction of response tokens kept, in (0, 1].
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"tip keep fraction must lie in (0, 1], got {keep}")
    sel = select(student_logits.detach(), teacher_logits.detach(), mask)
    n = sel.rows.numel()
    out = torch.zeros(mask.numel(), dtype=torch.float32, device=mask.device)
    if n == 0:
        return out.view_as(mask)
    ent = token_values(_entropy, sel.student, sel.teacher, sel.rows, chunk_size=chunk_size)
    div = token_values(_reverse_kl, sel.student, sel.teacher, sel.rows, chunk_size=chunk_size)
    budget = max(1, math.ceil(keep * n))
    chosen = torch.zeros(n, dtype=torch.bool, device=mask.device)
    chosen[ent.argsort(descending=True)[: math.ceil(budget / 2)]] = True
    low = ent <= ent.median()
    for pool in (low & ~chosen, ~chosen):
        room = budget - int(chosen.sum())
        if room <= 0:
            break
        cand = pool.nonzero().squeeze(1)
        chosen[cand[div[cand].argsort(descending=True)[:room]]] = True
    out[sel.rows[chosen]] = 1.0
    return out.view_as(mask)


def _entropy(s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    logp = torch.log_softmax(s, -1)
    return -(logp.exp() * logp).sum(-1)


def _reverse_kl(s: torch.Tensor, t: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    return divergence.reverse_kl(*support.full_vocab(s, t))
