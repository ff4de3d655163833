"""Turn-level training samples: which turns are trained, by which term, with what weight.

One sample per turn. The objective of a batch of trajectories is

    (1 / N) * sum_trajectories  sum_turns  (w_k / sum_j w_j) * L_k

with ``L_k`` the per-token mean loss of turn k (a turn is reduced first), ``w`` the turn
weights of the trajectory (``uniform``, ``discount``, SOD) and N the number of trajectories
with trained turns (then per trajectory). The TCOD curriculum zeroes the distillation weight of
turns past the first k. The optional RL term (GRPO/RLOO group advantage on the trajectory's
reward) is added to the distillation term (``add``), or routed: successful trajectories get
the RL term and failed ones the distillation term (``route``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmopsd.methods.advantages import group_advantages
from mmopsd.methods.turn_weighting import TURN_WEIGHTINGS

if TYPE_CHECKING:
    from mmopsd.methods.curriculum import TemporalCurriculum
    from mmopsd.types import Trajectory, Turn

RL_MODES = ("none", "add", "route")


@dataclass
class TurnSample:
    """One turn to train.

    Attributes:
        turn: the turn (exact prompt and response ids).
        trajectory: index of its trajectory in the batch.
        index: its position in the episode (0-based).
        distill: scale of this turn's per-token-mean distillation loss.
        rl: scale of this turn's per-token-mean policy-gradient term (advantage included).
        share: the turn's weight in the batch objective without any term's coefficient
            (turn weight over the trajectory's, over the trajectories): the scale of a
            penalty that applies to every trained turn (the KL to the initial model).
        old_logprobs: the log-probs of its response ids when the batch was sampled (set
            before several optimizer passes: the RL term's ratio is clipped against them).
        label: scale of a supervised label term on its response ids (a turn relabelled with
            an expert's action: :class:`~mmopsd.methods.terms.HardLabel`).
    """

    turn: Turn
    trajectory: int
    index: int
    distill: float
    rl: float
    share: float = 0.0
    old_logprobs: list[float] | None = None
    label: float = 0.0


def route(trajectories: Sequence[Trajectory], mode: str) -> list[tuple[float, float]]:
    """``(distillation, rl)`` switches per trajectory.

    - ``none``: distillation only;
    - ``add``: both terms on every trajectory;
    - ``route``: successful trajectories to RL, failed ones to distillation.
    """
    if mode not in RL_MODES:
        raise ValueError(f"rl mode must be one of {', '.join(RL_MODES)}, got {mode!r}")
    if mode == "none":
        return [(1.0, 0.0)] * len(trajectories)
    if mode == "add":
        return [(1.0, 1.0)] * len(trajectories)
    return [(0.0, 1.0) if t.success else (1.0, 0.0) for t in trajectories]


def plan_turns(
    trajectories: Sequence[Trajectory],
    *,
    step: int = 0,
    turn_weighting: str = "uniform",
    weighting_kwargs: Mapping[str, Any] | None = None,
    curriculum: TemporalCurriculum | None = None,
    rl: str = "none",
    rl_coef: float = 1.0,
    advantage: str = "grpo",
    divergences: Mapping[tuple[int, int], float] | None = None,
    distill_coef: float = 1.0,
    success_only: bool = False,
    keep_all: bool = False,
) -> list[TurnSample]:
    """The training samples of a batch of trajectories (see the module doc).

    Args:
        trajectories: the batch.
        step: the 0-based training step (for the curriculum).
        turn_weighting: ``uniform``, ``discount`` or ``sod``.
        weighting_kwargs: its options (``gamma``; ``eps``, ``delta``).
        curriculum: distil only the first k turns (None: all turns).
        rl: ``none``, ``add`` or ``route``.
        rl_coef: multiplies the RL term.
        advantage: ``grpo`` or ``rloo`` (groups are the trajectories' ``group_id``).
        divergences: per ``(trajectory, turn)`` mean ``|log S - log T|`` (required by ``sod``).
        distill_coef: multiplies the distillation term (0: RL alone).
        success_only: train on won trajectories only (rejection sampling); ``N`` then counts
            the won ones.
        keep_all: keep every trained turn, also those with no distillation or RL term (a
            KL penalty applies to them).
    """
    weigh = TURN_WEIGHTINGS.get(turn_weighting)
    switches = route(trajectories, rl)
    advantages = (
        group_advantages(
            [t.total_reward for t in trajectories],
            [t.group_id for t in trajectories],
            kind=advantage,
        )
        if rl != "none"
        else [0.0] * len(trajectories)
    )
    kept = _kept_turns(trajectories, success_only)
    n = sum(1 for turns in kept if turns)
    samples: list[TurnSample] = []
    for i, turns in enumerate(kept):
        if not turns:
            continue
        options = dict(weighting_kwargs or {})
        if turn_weighting == "sod":
            if divergences is None:
                raise ValueError("the sod turn weighting needs per-turn divergences")
            options["divergences"] = [divergences[(i, k)] for k, _ in turns]
        limit = curriculum.turns_at(step) if curriculum is not None else len(turns)
        scale = (distill_coef * switches[i][0], switches[i][1] * rl_coef * advantages[i])
        samples += _trajectory_samples(i, turns, weigh(len(turns), **options), limit, n, scale,
                                       keep_all)  # fmt: skip
    return samples


def _kept_turns(
    trajectories: Sequence[Trajectory], success_only: bool
) -> list[list[tuple[int, Turn]]]:
    """Per trajectory, its turns that have a response (none for a lost trajectory under
    ``success_only``)."""
    return [
        [(k, t) for k, t in enumerate(tr.turns) if t.response_ids]
        if tr.success or not success_only
        else []
        for tr in trajectories
    ]


def _trajectory_samples(
    i: int,
    turns: list[tuple[int, Turn]],
    weights: Sequence[float],
    limit: int,
    n: int,
    scale: tuple[float, float],
    keep_all: bool,
) -> list[TurnSample]:
    """One trajectory's samples: distillation normalised over its distilled turns (those
    before the curriculum's ``limit``), the RL term over all its turns, both divided by the
    ``n`` trajectories trained on; ``scale`` holds the distillation and RL multipliers."""
    distilled = sum(w for (k, _), w in zip(turns, weights) if k < limit)
    total = sum(weights)
    out = []
    for (k, turn), w in zip(turns, weights):
        d = scale[0] * w / distilled / n if k < limit and distilled > 0 else 0.0
        share = w / total / n if total > 0 else 0.0
        r = scale[1] * share
        if d or r or (keep_all and share):
            out.append(TurnSample(turn, i, k, d, r, share))
    return out
