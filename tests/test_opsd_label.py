"""``opsd_label``: every turn distils; a turn past the teacher-student gap threshold whose
state names the expert's action also gets that action as a supervised label."""

from __future__ import annotations

import math

from mmopsd.config import from_dict
from mmopsd.methods import Batch, build_method
from mmopsd.methods.terms import HardLabel
from mmopsd.testing import tiny_text_policy
from mmopsd.training.loop import build, train_step
from mmopsd.types import Encoded, Trajectory, Turn


def _config(tmp_path, **method):
    return from_dict({
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/Sokoban-v0", "provider": "reference",
                   "provider_kwargs": {"kind": "next_action"}}],
        "method": {"name": "opsd_label", **method},
        "rollout": {"max_turns": 3, "max_new_tokens": 4},
        "optimizer": {"steps": 3, "batch_size": 4, "micro_batch_size": 4},
        "evaluation": {"every": 0, "cache": ""},
        "run": {"save_every": 0, "out_dir": str(tmp_path / "run")},
    })  # fmt: skip


def test_only_turns_past_the_gap_with_an_expert_action_get_the_label(tmp_path):
    policy = tiny_text_policy()
    method = build_method(_config(tmp_path, label_threshold=0.5, label_coef=2.0))
    said = {"privileged": {"next_action": "push up"}}
    turns = [
        Turn([], Encoded(ids=[5, 6]), [9, 9], info=said),  # far from the teacher: labelled
        Turn([], Encoded(ids=[5, 6, 7]), [8], info=said),  # close: distilled only
        Turn([], Encoded(ids=[5, 7]), [8, 8], info={"privileged": {}}),  # far, no expert
    ]
    gaps = {(0, 0): 2.0, (0, 1): 0.1, (0, 2): 3.0}
    samples = method.plan(Batch([Trajectory("t", "g", turns)], 1, gaps, policy))
    distilled = [s for s in samples if s.distill > 0]
    labelled = [s for s in samples if s.label > 0]
    assert [s.index for s in distilled] == [0, 1, 2]
    assert [s.index for s in labelled] == [0]
    first = labelled[0]
    assert first.turn.response_ids == [*policy.tokenize("push up").ids, policy.eos_id]
    assert first.distill == 0.0 and math.isclose(first.label, 2.0 * distilled[0].share)
    assert isinstance(method.terms()[-1], HardLabel) and method.reads_divergences
    assert not method.reads_teacher(first)  # the label reads no teacher


def test_an_opsd_label_run_trains(tmp_path):
    config = _config(tmp_path, label_threshold=0.0)  # every turn with an expert action
    c = build(config, tiny_text_policy())
    try:
        records = [train_step(step, c, config) for step in range(1, 4)]
    finally:
        c.envs.close()
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in records)
