"""Turn weights for multi-turn distillation: ``uniform``, ``discount`` and SOD step-wise.

Each function maps the turns of one trajectory to one weight per turn; the turn-level loss of
turn k is multiplied by its weight before the per-trajectory reduction.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmopsd.registry import Registry

TURN_WEIGHTINGS: Registry = Registry("turn weighting")


@TURN_WEIGHTINGS.register("uniform")
def uniform(n_turns: int, **_: object) -> list[float]:
    """Every turn weighs 1."""
    return [1.0] * n_turns


@TURN_WEIGHTINGS.register("discount")
def discount(n_turns: int, *, gamma: float = 0.9, **_: object) -> list[float]:
    """``w_k = gamma ** k`` for the k-th turn (0-based): early turns weigh most, since their
    errors compound over the rest of the episode."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"discount gamma must lie in (0, 1], got {gamma}")
    return [gamma**k for k in range(n_turns)]


@TURN_WEIGHTINGS.register("sod")
def sod(
    n_turns: int,
    *,
    divergences: Sequence[float],
    eps: float = 1e-3,
    delta: float = 1.0,
    **_: object,
) -> list[float]:
    """Step-wise weights of SOD.

    With ``d_k`` the mean ``|log S - log T|`` over the tokens of step k (detached),
    ``w_1 = 1`` and ``w_k = min(prod_{u<k} (d_u + eps) / (d_{u+1} + eps), 1 + delta)``:
    steps where the student already agrees with the teacher more than at the start are
    up-weighted, capped at ``1 + delta``.
    """
    if len(divergences) != n_turns:
        raise ValueError(f"sod needs one divergence per turn: {len(divergences)} for {n_turns}")
    weights, ratio = [], 1.0
    for k in range(n_turns):
        if k > 0:
            ratio *= (divergences[k - 1] + eps) / (divergences[k] + eps)
        weights.append(1.0 if k == 0 else min(ratio, 1.0 + delta))
    return weights
