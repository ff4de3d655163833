"""Turns scored inside a later turn of their episode: one forward pass per conversation.

Without a history window (and until a window fills), a turn's prompt is the previous turn's
prompt, its response ids and the new observation, token for token (:mod:`mmopsd.rollout` never
re-tokenizes a history). The logits that predict an earlier turn's response then sit inside
the later turn's sequence, at the same positions and after the same tokens: a causal model
gives them the same values there. Scoring the longest such sequence once yields every nested
turn's logits, and backward through them every nested turn's gradient, for the cost of one
forward and backward pass over that sequence instead of one per turn. A 2-turn MiniWoB++
episode then costs its second turn's tokens, not both turns' (the first turn's prompt is most
of the second's).

A :class:`Family` is such a sequence (its *root*, the turn with the longest prompt) and the
turns found inside it. A turn nests only where its prompt and response ids are, exactly, the
beginning of the root's prompt (compared id for id, so a history window or anything else that
rewrites a prompt simply yields families of one); text prompts only (image tensors are never
shared). The teacher's prompts hold privileged information at their end and are scored turn by
turn as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmopsd.methods.turn_plan import TurnSample
from mmopsd.types import Encoded


@dataclass
class Family:
    """A root sample and the samples inside its sequence.

    Attributes:
        root: index of the sample whose prompt and response ids are the scored sequence.
        members: ``(sample index, start)`` of every sample in the family, the root first:
            ``start`` is where its response begins in the root's sequence.
    """

    root: int
    members: list[tuple[int, int]] = field(default_factory=list)


def sequence(sample: TurnSample) -> Encoded:
    """A sample's prompt followed by its response ids (text prompts)."""
    turn = sample.turn
    return Encoded(ids=[*turn.prompt.ids, *turn.response_ids])


def _nestable(sample: TurnSample) -> bool:
    prompt = sample.turn.prompt
    return bool(sample.turn.response_ids) and not prompt.mm and not prompt.images


def families(samples: Sequence[TurnSample], *, nest: bool = True) -> list[Family]:
    """Group ``samples`` into families (every sample in exactly one). Only turns of one
    trajectory can nest; with ``nest`` False every sample is its own family."""
    if not nest:
        return [Family(i, [(i, len(s.turn.prompt))]) for i, s in enumerate(samples)]
    by_trajectory: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_trajectory[s.trajectory].append(i)
    out: list[Family] = []
    for members in by_trajectory.values():
        # Longest sequences first: each sample joins the first root that holds it.
        members.sort(
            key=lambda i: -(len(samples[i].turn.prompt) + len(samples[i].turn.response_ids))
        )
        roots: list[tuple[Family, np.ndarray]] = []
        for i in members:
            sample = samples[i]
            ids = np.asarray(sequence(sample).ids)
            home = _root_holding(roots, ids) if _nestable(sample) else None
            if home is None:
                family = Family(i, [(i, len(sample.turn.prompt))])
                out.append(family)
                if _nestable(sample):
                    roots.append((family, np.asarray(samples[i].turn.prompt.ids)))
            else:
                home.members.append((i, len(sample.turn.prompt)))
    return out


def _root_holding(roots: list[tuple[Family, np.ndarray]], ids: np.ndarray) -> Family | None:
    """The first root whose prompt begins with ``ids`` (a turn's prompt and response)."""
    for family, prompt in roots:
        if len(ids) <= len(prompt) and np.array_equal(prompt[: len(ids)], ids):
            return family
    return None
