"""One training pass over a batch of turns: score both sides on identical ids, per-turn
losses, backward. This is the heart of on-policy self-distillation.

Each turn's loss is a per-token mean (after token weighting) scaled by its
:class:`~mmopsd.methods.turn_plan.TurnSample` weight, and the scaled losses are summed; since the
scales already hold every normalisation, micro-batching gives exactly the full-batch gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from mmopsd.losses.weighting import WEIGHTINGS
from mmopsd.methods.terms import Divergence, Term
from mmopsd.methods.turn_plan import TurnSample
from mmopsd.policies.base import Policy, Scored
from mmopsd.training.logprobs import token_logprobs_rows as _token_logprobs
from mmopsd.training.nesting import Family, families, sequence
from mmopsd.training.teachers import Teacher
from mmopsd.training.terms import TermInput, compute
from mmopsd.types import Encoded, Turn


@dataclass
class Objective:
    """A method's loss terms, plus what every term's token weights share: an optional token
    weighting and the truncation ``importance_cap`` of the importance weight
    ``min(exp(log S(y) - log p_engine(y)), cap)`` that multiplies every token's loss when the
    rollout engine gave its log-probs (0 turns the correction off; the mismatch is logged
    either way).
    """

    terms: tuple[Term, ...] = (Divergence(),)
    weighting: str = "none"
    weighting_options: dict[str, Any] = field(default_factory=dict)
    importance_cap: float = 2.0

    @property
    def reads_reference(self) -> bool:
        """Whether a term scores the initial model on the student's own prompts."""
        return any(t.reads_reference for t in self.terms)


def distill_backward(
    student: Policy,
    teacher: Teacher,
    samples: Sequence[TurnSample],
    teacher_prompts: Sequence[Encoded | None],
    objective: Objective,
    *,
    micro_batch_size: int,
    scale: float = 1.0,
    micro_batches: int | None = None,
    accumulate: Callable[[bool], AbstractContextManager] | None = None,
    always_teacher: bool = False,
    nest: bool = True,
) -> dict[str, float]:
    """Accumulate the gradient of ``scale * sum_terms sum_k c_k * L_k`` over ``samples``
    (``c_k`` the coefficient of sample ``k`` for a term, ``L_k`` the term's per-token mean on
    it).

    ``teacher_prompts[i]`` is the teacher's prompt of ``samples[i]`` (None where the sample
    has no distillation term). Data-parallel ranks pass ``micro_batches`` (every rank runs
    that many backward passes, empty ones where it has no more samples) and ``accumulate``
    (``accumulate(last)`` is the context of each backward: only the last synchronises);
    sharded ranks also pass ``always_teacher`` (the teacher scores every micro-batch, so
    every rank runs the same forwards); ``nest`` False scores every turn in its own sequence
    (:mod:`mmopsd.training.nesting`: same gradient, more compute). Returns the distillation
    and RL terms (unscaled) and the token count, plus, over tokens whose engine log-prob is
    known, the summed ``|log p_engine - log S|`` (``mismatch``), importance weights
    (``importance``) and their count (``engine_tokens``).
    """
    if len(samples) != len(teacher_prompts):
        raise ValueError(f"{len(samples)} samples but {len(teacher_prompts)} teacher prompts")
    # Turns inside a later turn's sequence are scored there (nesting). Sequences in order of
    # their ids: those that begin alike (one episode's turns) share micro-batches, where
    # their common beginning is fed once (Policy.score_spans). The objective is a sum, so
    # order is free.
    groups = families(samples, nest=nest and not student.sees_images)
    groups.sort(key=lambda f: sequence(samples[f.root]).ids)
    totals = dict.fromkeys(("loss", "rl_loss", "kl", "tokens", "mismatch", "importance"), 0.0)
    totals["engine_tokens"] = 0.0
    starts = list(range(0, len(groups), micro_batch_size))
    count = len(starts) if micro_batches is None else micro_batches
    if count < len(starts):
        raise ValueError(f"{len(starts)} micro-batches of samples but only {count} allowed")
    for n in range(count):
        with accumulate(n == count - 1) if accumulate else nullcontext():
            if n >= len(starts):  # an empty micro-batch: a zero loss through every parameter
                forwards = 1 + objective.reads_reference  # the teacher, the initial model
                _empty_backward(student, teacher if always_teacher else None, forwards)
                continue
            chosen = groups[starts[n] : starts[n] + micro_batch_size]
            _micro_batch(
                student, teacher, samples, teacher_prompts, objective, chosen, micro_batch_size,
                scale, totals, always_teacher,
            )  # fmt: skip
    return totals


def _micro_batch(
    student: Policy,
    teacher: Teacher,
    samples: Sequence[TurnSample],
    teacher_prompts: Sequence[Encoded | None],
    objective: Objective,
    chosen: Sequence[Family],
    micro_batch_size: int,
    scale: float,
    totals: dict[str, float],
    always_teacher: bool = False,
) -> None:
    """Forward and backward of one micro-batch (the samples of ``chosen`` families); adds
    its terms to ``totals``."""
    order = [i for f in chosen for i, _ in f.members]
    part = [samples[i] for i in order]
    prompts = [teacher_prompts[i] for i in order]
    responses = [s.turn.response_ids for s in part]
    coefficients = [
        torch.tensor([t.coefficient(s) for s in part], dtype=torch.float64) for t in objective.terms
    ]
    target = None
    terms = list(zip(objective.terms, coefficients))
    distilling = any(t.reads_teacher and bool(c.any()) for t, c in terms)
    if distilling or objective.weighting != "none" or always_teacher:
        # Teacher first: its temporaries are freed before the student's activations are kept.
        teacher_in = [_teacher_prompt(p, s) for p, s in zip(prompts, part)]
        target = _chunked(teacher.score, teacher_in, responses, micro_batch_size)
    scored = _student_scores(student, samples, chosen)  # with grad
    mask = scored.mask * _response_mask([s.turn for s in part], scored.mask)
    per_turn = _per_turn_weights(mask, scored.logits, target, objective)
    if any(s.turn.sampled_logprobs for s in part):  # the rollout engine gave log-probs
        weights = _importance_weights(part, scored, mask, objective.importance_cap, totals)
        per_turn = per_turn * weights.to(per_turn.dtype)

    def reference() -> torch.Tensor:
        with torch.no_grad():
            prompts = [s.turn.prompt for s in part]
            scores = _chunked(teacher.score, prompts, responses, micro_batch_size)
        return _token_logprobs(scores.logits, scored.ids)

    value = scored.logits.sum() * 0.0
    for term, coefficient in terms:
        if not bool(coefficient.any()):
            continue
        weights = per_turn * coefficient.to(per_turn.device, per_turn.dtype)[:, None]
        x = TermInput(part, scored, mask, weights, target, reference)
        term_value = compute(term, x)
        totals[term.key] += term_value.item()
        value = value + term_value
    (value * scale if scale != 1.0 else value).backward()
    totals["tokens"] += float(mask.sum())


def _student_scores(
    student: Policy, samples: Sequence[TurnSample], chosen: Sequence[Family]
) -> Scored:
    """The student's logits of every sample of ``chosen`` (root first, family by family):
    one sequence per family, nested turns read inside it."""
    if all(len(f.members) == 1 for f in chosen):
        part = [samples[f.root] for f in chosen]
        return student.score([s.turn.prompt for s in part], [s.turn.response_ids for s in part])
    spans = [
        (row, start, len(samples[i].turn.response_ids))
        for row, f in enumerate(chosen)
        for i, start in f.members
    ]
    return student.score_spans([sequence(samples[f.root]) for f in chosen], spans)


def _chunked(
    score: Callable[[Sequence[Encoded], Sequence[Sequence[int]]], Scored],
    prompts: Sequence[Encoded],
    responses: Sequence[Sequence[int]],
    size: int,
) -> Scored:
    """``score`` over at most ``size`` rows at a time (a micro-batch of families holds more
    turns than sequences), prompts that begin alike together, joined in the given order
    with responses padded to one length."""
    if len(prompts) <= size:
        return score(prompts, responses)
    order = sorted(range(len(prompts)), key=lambda i: prompts[i].ids)  # alike ones together
    parts = [
        score([prompts[i] for i in chunk], [responses[i] for i in chunk])
        for chunk in (order[k : k + size] for k in range(0, len(order), size))
    ]
    width = max(p.logits.shape[1] for p in parts)

    def joined(name: str) -> torch.Tensor:
        tensors = [getattr(p, name) for p in parts]
        tensors = [
            torch.cat([t, t.new_zeros((t.shape[0], width - t.shape[1], *t.shape[2:]))], dim=1)
            if t.shape[1] < width
            else t
            for t in tensors
        ]
        back = torch.tensor(order, device=tensors[0].device).argsort()
        return torch.cat(tensors)[back]

    return Scored(logits=joined("logits"), mask=joined("mask"), ids=joined("ids"))


@torch.no_grad()
def _importance_weights(
    part: Sequence[TurnSample],
    scored: Any,
    mask: torch.Tensor,
    cap: float,
    totals: dict[str, float],
) -> torch.Tensor:
    """Per-token truncated importance weights ``min(exp(log S(y) - log p_engine(y)), cap)``
    (1 where the engine gave no log-prob, or with ``cap`` 0); adds the mismatch statistics
    to ``totals``."""
    weights = torch.ones(mask.shape, dtype=torch.float64, device=mask.device)
    current = _token_logprobs(scored.logits, scored.ids).double()
    for i, sample in enumerate(part):
        engine = sample.turn.sampled_logprobs
        n = len(engine or [])
        if not n:
            continue
        trainer = current[i, :n]
        gap = trainer - torch.tensor(engine, dtype=torch.float64, device=trainer.device)
        on = mask[i, :n].double()
        ratio = gap.clamp(-20, 20).exp()
        totals["mismatch"] += float((gap.abs() * on).sum())
        totals["importance"] += float((ratio.clamp(max=cap) * on).sum()) if cap else 0.0
        totals["engine_tokens"] += float(on.sum())
        if cap:
            weights[i, :n] = ratio.clamp(max=cap)
    return weights.to(mask.device)


@torch.no_grad()
def old_logprobs(
    student: Policy, samples: Sequence[TurnSample], *, micro_batch_size: int
) -> list[list[float]]:
    """The student's current log-probs of each sample's response ids (the "old" policy of
    PPO's ratio, taken before the first optimizer pass)."""
    out: list[list[float]] = []
    for start in range(0, len(samples), micro_batch_size):
        part = samples[start : start + micro_batch_size]
        responses = [s.turn.response_ids for s in part]
        scored = student.score([s.turn.prompt for s in part], responses)
        logp = _token_logprobs(scored.logits, scored.ids)
        out += [logp[i, : len(r)].tolist() for i, r in enumerate(responses)]
    return out


def _empty_backward(student: Policy, teacher: Teacher | None, forwards: int = 1) -> None:
    """A backward pass whose gradient is zero, for a rank with no samples left (after
    ``forwards`` teacher forwards too, when ranks must run the same forwards)."""
    dummy = [Encoded(ids=[student.eos_id])], [[student.eos_id]]
    for _ in range(forwards if teacher is not None else 0):
        teacher.score(*dummy)
    scored = student.score(*dummy)
    (scored.logits.sum() * 0.0).backward()


@torch.no_grad()
def turn_divergences(
    student: Policy,
    teacher: Teacher,
    turns: Sequence[Turn],
    teacher_prompts: Sequence[Encoded],
    *,
    micro_batch_size: int,
) -> list[float]:
    """Mean ``|log S(y) - log T(y)|`` over each turn's sampled tokens (for SOD weights)."""
    out: list[float] = []
    for start in range(0, len(turns), micro_batch_size):
        part = turns[start : start + micro_batch_size]
        responses = [t.response_ids for t in part]
        target = teacher.score(teacher_prompts[start : start + micro_batch_size], responses)
        scored = student.score([t.prompt for t in part], responses)
        mask = (scored.mask * _response_mask(part, scored.mask)).float()
        log_s = _token_logprobs(scored.logits, scored.ids)
        log_t = _token_logprobs(target.logits, scored.ids)
        gap = ((log_s - log_t).abs() * mask).sum(1) / mask.sum(1).clamp_min(1)
        out += gap.tolist()
    return out


def _teacher_prompt(prompt: Encoded | None, sample: TurnSample) -> Encoded:
    # A sample trained by RL alone has no teacher context; its own prompt stands in (its
    # teacher logits then only feed the token weighting).
    return prompt if prompt is not None else sample.turn.prompt


def _per_turn_weights(
    mask: torch.Tensor, logits: torch.Tensor, target: Any, objective: Objective
) -> torch.Tensor:
    """Token weights that average each turn's tokens (after the optional token weighting)."""
    weights = mask.to(torch.promote_types(logits.dtype, torch.float32))  # float64 stays float64
    if objective.weighting != "none":
        weights = weights * WEIGHTINGS.get(objective.weighting)(
            mask, student_logits=logits, teacher_logits=target.logits,
            **objective.weighting_options,
        )  # fmt: skip
    return weights / weights.sum(1, keepdim=True).clamp_min(1e-12)


def _response_mask(turns: Sequence[Turn], like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(like)
    for i, t in enumerate(turns):
        m = t.response_mask or []
        out[i, : len(m)] = torch.tensor(m, dtype=like.dtype)
    return out
