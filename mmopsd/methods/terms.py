"""The loss terms a method can declare, as plain data (the trainer computes them).

Every term is a per-token sum over a turn's response tokens, each turn's tokens averaged
first (after the optional token weighting and importance weights), then scaled by the turn's
coefficient for that term (:meth:`coefficient` reads it from the turn's
:class:`~mmopsd.methods.turn_plan.TurnSample`). The terms of a micro-batch are added in the
order the method lists them. :mod:`mmopsd.training.terms` computes each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mmopsd.methods.turn_plan import TurnSample


@dataclass(frozen=True)
class Term:
    """A loss term: ``key`` names its sum in a step's metrics; ``reads_teacher`` says whether
    it needs the teacher's scores under the privileged prompt, ``reads_reference`` whether it
    needs the initial model's scores under the student's own prompt."""

    key: ClassVar[str] = "loss"
    reads_teacher: ClassVar[bool] = False
    reads_reference: ClassVar[bool] = False

    def coefficient(self, sample: TurnSample) -> float:
        """The scale of this term on ``sample`` (0: not trained by it)."""
        return sample.distill


@dataclass(frozen=True)
class Divergence(Term):
    """A token-level divergence between the student's and the teacher's next-token
    distributions on the sampled ids (a loss of :mod:`mmopsd.losses`, e.g. ``forward_kl``),
    scaled by the turn's ``distill`` coefficient.

    Attributes:
        loss: the registered loss name.
        options: its keyword options (``top_k``, ``beta``, ``chunk_size``, ...).
    """

    reads_teacher: ClassVar[bool] = True
    loss: str = "forward_kl"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossEntropy(Term):
    """Cross-entropy on the turn's response ids under the student's own prompt (supervised
    learning of given tokens: the teacher's, or an expert's), scaled by ``distill``. Reads no
    teacher.

    Attributes:
        options: options of the ``sft`` loss (``chunk_size``).
    """

    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HardLabel(CrossEntropy):
    """Cross-entropy on a relabelled turn's ids (an expert's action), scaled by the turn's
    ``label`` coefficient: the supervised label added where a method asks for one."""

    def coefficient(self, sample: TurnSample) -> float:
        return sample.label


@dataclass(frozen=True)
class PolicyGradient(Term):
    """The policy-gradient term on the turn's sampled ids, scaled by its ``rl`` coefficient
    (the advantage is inside it); PPO's clipped ratio with range ``clip_eps`` where the turn
    carries the log-probs of the pass that sampled it."""

    key: ClassVar[str] = "rl_loss"
    clip_eps: float = 0.2

    def coefficient(self, sample: TurnSample) -> float:
        return sample.rl


@dataclass(frozen=True)
class KLPenalty(Term):
    """The k3 estimate of KL(student || initial model) on the sampled ids, weighted by
    ``coef`` times the turn's ``share`` of the batch objective (the initial model is the
    ``frozen`` teacher scoring the student's own prompt)."""

    key: ClassVar[str] = "kl"
    reads_reference: ClassVar[bool] = True
    coef: float = 0.0

    def coefficient(self, sample: TurnSample) -> float:
        return self.coef * sample.share
