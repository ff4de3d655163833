"""DAgger, the method the docs write in one file: the page shows the whole file, it labels
every visited state with the expert's action, and a run learns those labels."""

from __future__ import annotations

from pathlib import Path

from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.methods import Batch, build_method
from mmopsd.testing import tiny_text_policy
from mmopsd.training.loop import build, train_step
from mmopsd.types import Encoded, Trajectory, Turn

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_show_the_whole_dagger_file():
    doc = (ROOT / "docs" / "methods.md").read_text()
    shown = doc.split("<!-- dagger.py -->\n```python\n", 1)[1].split("```", 1)[0]
    assert shown == (ROOT / "mmopsd" / "methods" / "dagger.py").read_text()


def _config(tmp_path, **kw) -> TrainConfig:
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/Sokoban-v0"}],
        "method": {"name": "dagger"},
        "rollout": {"max_turns": 3, "max_new_tokens": 4},
        "optimizer": {"steps": 8, "batch_size": 4, "micro_batch_size": 4, "lr": 3e-3},
        "evaluation": {"every": 0, "cache": ""},
        "run": {"save_every": 0, "out_dir": str(tmp_path / "run"), "seed": 0},
    }
    return from_dict(merge(base, kw))


def test_every_visited_state_is_labelled_with_the_experts_action(tmp_path):
    policy = tiny_text_policy()
    method = build_method(_config(tmp_path))
    said = {"privileged": {"next_action": "push up"}}
    turns = [
        Turn([], Encoded(ids=[5, 6]), [9, 9, 9], info=said),
        Turn([], Encoded(ids=[5, 6, 7]), [8], info={"privileged": {}}),  # the expert said nothing
    ]
    samples = method.plan(Batch([Trajectory("t", "g", turns)], step=1, policy=policy))
    assert [(s.index, s.turn.response_ids) for s in samples] == [
        (0, [*policy.tokenize("push up").ids, policy.eos_id])
    ]
    assert samples[0].turn.prompt.ids == [5, 6] and samples[0].distill == 1.0
    assert not method.reads_teacher(samples[0])  # no teacher forward at all


def test_a_dagger_run_learns_the_experts_actions(tmp_path):
    config = _config(tmp_path)
    c = build(config, tiny_text_policy())
    try:
        losses = [
            train_step(step, c, config)["loss"] for step in range(1, config.optimizer.steps + 1)
        ]
    finally:
        c.envs.close()
    assert all(loss > 0 for loss in losses)
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses  # the labels' cross-entropy falls


def test_expert_cloning_plays_the_expert_and_labels_as_dagger_does(tmp_path):
    """``bc_expert``: the environment's expert answers every turn (the model never
    generates), wins, and each reply has the ids DAgger labels that state with."""
    config = _config(tmp_path, method={"name": "bc_expert"}, rollout={"max_turns": 30})
    c = build(config, tiny_text_policy())

    def never(*args, **kwargs):
        raise AssertionError("the expert plays: nothing is generated")

    c.policy.generate = never
    c.engine.generate = never
    try:
        from mmopsd.training.step import _rollouts

        trajectories = _rollouts(1, c, config)
    finally:
        c.envs.close()
    assert trajectories and all(t.success for t in trajectories)
    dagger = build_method(_config(tmp_path))
    for t in trajectories:
        for turn in t.turns:
            assert turn.valid
            relabelled = dagger.plan(Batch([Trajectory("t", "g", [turn])], 1, policy=c.policy))
            assert relabelled[0].turn.response_ids == turn.response_ids


def test_a_bc_expert_run_learns_the_experts_actions(tmp_path):
    config = _config(tmp_path, method={"name": "bc_expert"}, rollout={"max_turns": 30})
    c = build(config, tiny_text_policy())
    try:
        records = [train_step(step, c, config) for step in range(1, config.optimizer.steps + 1)]
    finally:
        c.envs.close()
    losses = [r["loss"] for r in records]
    assert all(r["rollout_success"] == 1.0 for r in records)  # the expert's episodes
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
