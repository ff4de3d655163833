"""The loss terms of :mod:`mmopsd.methods.terms`, computed on a scored micro-batch.

Each function returns the term's sum over the micro-batch's response tokens, with the
per-token ``weights`` (each turn's tokens averaged, times the turn's coefficient for the
term) already in place; :func:`compute` picks the one for a term's type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmopsd.checks import needs_ids
from mmopsd.losses import get as get_loss
from mmopsd.losses.cross_entropy import sft
from mmopsd.losses.policy_gradient import clipped_policy_gradient, kl_to_reference, policy_gradient
from mmopsd.methods.terms import CrossEntropy, Divergence, KLPenalty, PolicyGradient, Term
from mmopsd.methods.turn_plan import TurnSample
from mmopsd.policies.base import Scored
from mmopsd.training.logprobs import token_logprobs_rows


@dataclass
class TermInput:
    """One micro-batch, scored.

    Attributes:
        samples: its turns.
        scored: the student's scores (with grad), ``logits`` ``[B, R, V]``.
        mask: ``[B, R]`` the response tokens to train.
        weights: ``[B, R]`` per-token weights including the turn's coefficient.
        teacher: the teacher's scores under its privileged prompts (where a term reads them).
        reference: the initial model's per-token log-probs ``[B, R]`` of the sampled ids
            under the student's own prompts, computed on first call.
    """

    samples: Sequence[TurnSample]
    scored: Scored
    mask: torch.Tensor
    weights: torch.Tensor
    teacher: Scored | None
    reference: Callable[[], torch.Tensor]


def _divergence(term: Divergence, x: TermInput) -> torch.Tensor:
    if x.teacher is None:
        raise ValueError("a divergence term needs the teacher's scores")
    fn = get_loss(term.loss)
    options: dict[str, Any] = dict(term.options, reduction="sum", weights=x.weights)
    if needs_ids(fn):
        options["response_ids"] = x.scored.ids
    return fn(x.scored.logits, x.teacher.logits, x.mask, **options)


def _cross_entropy(term: CrossEntropy, x: TermInput) -> torch.Tensor:
    return sft(
        x.scored.logits, None, x.mask, response_ids=x.scored.ids, weights=x.weights,
        reduction="sum", **term.options,
    )  # fmt: skip


def _policy_gradient(term: PolicyGradient, x: TermInput) -> torch.Tensor:
    """The policy-gradient term; PPO's clipped ratio where the samples carry the log-probs
    of the pass that sampled them (several optimizer passes per batch)."""
    scored = x.scored
    if all(s.old_logprobs is None for s in x.samples):
        return policy_gradient(scored.logits, x.mask, scored.ids, weights=x.weights)
    old = token_logprobs_rows(scored.logits.detach(), scored.ids)  # ratio 1 where none kept
    for i, s in enumerate(x.samples):
        if s.old_logprobs is not None:
            n = len(s.old_logprobs)
            old[i, :n] = torch.tensor(s.old_logprobs, dtype=old.dtype, device=old.device)
    return clipped_policy_gradient(
        scored.logits, x.mask, scored.ids, weights=x.weights, old_logprobs=old,
        clip_eps=term.clip_eps,
    )  # fmt: skip


def _kl_penalty(term: KLPenalty, x: TermInput) -> torch.Tensor:
    scored = x.scored
    return kl_to_reference(
        scored.logits, x.mask, scored.ids, ref_logprobs=x.reference(), weights=x.weights
    )


COMPUTE: dict[type, Callable[[Any, TermInput], torch.Tensor]] = {
    Divergence: _divergence,
    CrossEntropy: _cross_entropy,
    PolicyGradient: _policy_gradient,
    KLPenalty: _kl_penalty,
}


def compute(term: Term, x: TermInput) -> torch.Tensor:
    """The value of ``term`` on the micro-batch ``x``."""
    for kind in type(term).__mro__:
        if kind in COMPUTE:
            return COMPUTE[kind](term, x)
    raise TypeError(
        f"no computation for the term {type(term).__name__}; register one in "
        "mmopsd.training.terms.COMPUTE"
    )
