"""Teacher views: the provider's context for each distilled turn, encoded for the teacher;
the leak check on the student's context; a step's rollouts saved when a provider fails."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from mmopsd.errors import MmopsdError
from mmopsd.methods.turn_plan import TurnSample
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import Episode, Provider
from mmopsd.privileged.leak import check_no_leak
from mmopsd.types import Encoded, Trajectory

Key = tuple[int, int]  # (trajectory index in the step's batch, turn index)
Views = dict[Key, list[tuple[Encoded, float]]]


def teacher_views(
    policy: Policy,
    provider: Provider,
    trajs: list[Trajectory],
    keys: list[Key],
    *,
    failed_path: Path,
) -> Views:
    """The teacher prompt(s) of the given turns with their view weights. On a provider error
    the step's trajectories are saved to ``failed_path`` first and the error says where."""
    groups: dict[str, list[Trajectory]] = {}
    for tr in trajs:
        groups.setdefault(tr.group_id, []).append(tr)
    try:
        return {key: _turn_views(policy, provider, trajs, groups, key) for key in keys}
    except MmopsdError as err:
        save_rollouts(failed_path, trajs)
        note = f"{err} (the {len(trajs)} trajectories of the step are saved in {failed_path})"
        raise type(err)(note) from err


def _turn_views(
    policy: Policy,
    provider: Provider,
    trajs: list[Trajectory],
    groups: dict[str, list[Trajectory]],
    key: Key,
) -> list[tuple[Encoded, float]]:
    """The teacher prompt(s) of one turn; the student's context is checked for privileged
    content once the provider has run (a provider must not write into it)."""
    i, k = key
    turn = trajs[i].turns[k]
    episode = Episode(
        trajectory=trajs[i],
        turn_index=k,
        siblings=tuple(t for t in groups[trajs[i].group_id] if t is not trajs[i]),
    )
    ctx = provider(
        turn.messages, turn.privileged, assistant_prefix=turn.assistant_prefix, episode=episode
    )
    check_no_leak(turn.messages, turn.privileged, keys=provider.keys)
    return [
        (policy.encode(v.messages, assistant_prefix=v.assistant_prefix), w)
        for v, w in ctx.all_views()
    ]


def expand_views(
    samples: list[TurnSample], views: Views
) -> tuple[list[TurnSample], list[Encoded | None]]:
    """One sample per teacher view (distillation scaled by the view's weight; the RL term,
    which needs no teacher, stays on the first). A sample without views (not distilled, or a
    loss that reads no teacher) keeps no teacher prompt."""
    out: list[TurnSample] = []
    prompts: list[Encoded | None] = []
    for s in samples:
        turn_views = views.get((s.trajectory, s.index)) if s.distill else None
        if not turn_views:
            out.append(s)
            prompts.append(None)
            continue
        for n, (prompt, weight) in enumerate(turn_views):
            rl = s.rl if n == 0 else 0.0
            out.append(dataclasses.replace(s, distill=s.distill * weight, rl=rl))
            prompts.append(prompt)
    return out, prompts


def save_rollouts(path: Path, trajs: list[Trajectory]) -> None:
    """Write trajectories as JSON lines (one per trajectory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in trajs))
