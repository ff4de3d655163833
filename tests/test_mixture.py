"""Training on a mixture of environments: entries, the draw, per-task providers, evaluation
of every task, and a kill and resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from mmopsd.privileged.base import Episode, Provider

from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.errors import MmopsdError
from mmopsd.evaluation.tasks import extra_tasks
from mmopsd.parallel import Parallel
from mmopsd.testing import tiny_text_policy
from mmopsd.training import loop as trainer_mod
from mmopsd.training.components import check
from mmopsd.training.mixture import ByTask, TrainTask, draw, train_tasks
from mmopsd.types import TeacherContext, Trajectory

TASKS = [
    {"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_doors": 2, "n_rooms": 1}, "name": "one-room"},
    {"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_doors": 3, "n_rooms": 2}, "name": "two-rooms",
     "weight": 2.0, "provider": "reference", "provider_kwargs": {"key": "answer"}},
]  # fmt: skip


def _fields(tmp_path, **kw) -> dict:
    base = {
        "model": {"name": "tiny"},
        "tasks": TASKS,
        "rollout": {"max_new_tokens": 3, "max_turns": 2, "save": True},
        "optimizer": {"steps": 3, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 2},
        "run": {
            "save_every": 1,
            "keep_checkpoints": 3,
            "out_dir": str(tmp_path / "run"),
            "seed": 0,
        },
    }
    return merge(base, kw)


def _config(tmp_path, **kw) -> TrainConfig:
    return from_dict(_fields(tmp_path, **kw))


def test_each_task_is_complete_and_one_environment_is_a_mixture_of_one():
    config = from_dict({"tasks": [{"history": 3, **t} for t in TASKS]})
    one, two = train_tasks(config)
    assert one == TrainTask("mmopsd/KeyDoor-v0", {"n_doors": 2, "n_rooms": 1}, 1.0, "hint",
                            {}, 3, "one-room")  # fmt: skip
    assert (two.weight, two.provider, two.provider_kwargs) == (2.0, "reference",
                                                               {"key": "answer"})  # fmt: skip
    (alone,) = train_tasks(from_dict({"tasks": [{"env": "mmopsd/Sokoban-v0"}]}))
    assert alone.env == "mmopsd/Sokoban-v0" and alone.name == "Sokoban-v0"
    assert train_tasks(from_dict({})) == [TrainTask("mmopsd/KeyDoor-v0")]  # the default task


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"env_kwargs": {}}], r"tasks\[0\] needs env"),
        ([{"env": "mmopsd/KeyDoor-v0", "wieght": 2}], "unknown field of tasks\\[0\\] 'wieght'"),
        ([{"env": "mmopsd/KeyDoor-v0", "weight": 0}], r"tasks\[0\].weight must be > 0"),
        ([{"env": "mmopsd/KeyDoor-v0"}, {"env": "mmopsd/KeyDoor-v0"}], "named twice"),
        ([{"env": "mmopsd/KeyDoor-v0", "history": 0}], r"tasks\[0\].history must be >= 1"),
        ([{"env": "mmopsd/Nope-v0"}], "unknown environment 'mmopsd/Nope-v0'"),  # at the check
    ],
)
def test_a_bad_entry_is_refused_before_anything_runs(entries, message):
    with pytest.raises(MmopsdError, match=message):
        check(from_dict({"tasks": entries}), Parallel())


def test_the_draw_follows_the_weights_and_depends_on_seed_and_step_alone():
    tasks = [TrainTask("x", weight=1.0, name="a"), TrainTask("y", weight=3.0, name="b")]
    picks = [i for step in range(1, 201) for i in draw(tasks, 8, seed=5, step=step)]
    share = Counter(picks)[1] / len(picks)
    assert 0.7 < share < 0.8  # 0.75 expected; 1600 draws
    assert draw(tasks, 8, seed=5, step=7) == draw(tasks, 8, seed=5, step=7)
    assert draw(tasks, 8, seed=5, step=7) != draw(tasks, 8, seed=6, step=7)
    assert draw(tasks[:1], 3, seed=0, step=1) == [0, 0, 0]


class _Named(Provider):
    def __init__(self, label):
        self.label, self.seen = label, []

    def __call__(self, messages, privileged, *, assistant_prefix="", episode=None):
        self.seen.append(episode.trajectory.task)
        return TeacherContext(messages=list(messages), assistant_prefix=assistant_prefix)

    @property
    def keys(self):
        return [self.label]


def test_each_turn_is_served_by_its_own_tasks_provider():
    a, b = _Named("a"), _Named("b")
    both = ByTask({"a": a, "b": b})
    for task in ("a", "b", "b"):
        episode = Episode(trajectory=Trajectory("t", "g", task=task), turn_index=0, siblings=())
        both([], {}, episode=episode)
    assert (a.seen, b.seen) == (["a"], ["b", "b"])
    assert both.keys == ["a", "b"]
    both.observe([Trajectory("t1", "g", task="a"), Trajectory("t2", "g", task="b")], step=1)


def test_a_mixture_run_plays_both_tasks_and_reports_each(tmp_path):
    config = _config(
        tmp_path, optimizer={"steps": 2}, evaluation={"teacher": True}, run={"save_every": 0}
    )
    trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    run = tmp_path / "run"
    played = Counter()
    for file in sorted((run / "rollouts").glob("step-*.jsonl")):
        played.update(json.loads(line)["task"] for line in file.read_text().splitlines())
    assert set(played) == {"one-room", "two-rooms"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    for record in evals:
        for who in ("student", "teacher"):
            per_task = record[who]["per_task"]
            assert set(per_task) == {"one-room", "two-rooms"}
            assert all(p["episodes"] == 2 for p in per_task.values())
            mean = sum(p["success"] for p in per_task.values()) / 2
            assert record[who]["success"] == pytest.approx(mean)
            assert record[who]["episodes"] == 4
        assert record["student_success"] == record["student"]["success"]


class Killed(Exception):
    pass


def test_a_killed_mixture_run_resumes_exactly(tmp_path, monkeypatch):
    ref = tiny_text_policy()
    trainer_mod.train(_config(tmp_path / "a"), policy=ref, progress=False)
    real_step = trainer_mod.train_step

    def dying(step, c, config):
        if step == 3:
            raise Killed
        return real_step(step, c, config)

    monkeypatch.setattr(trainer_mod, "train_step", dying)
    with pytest.raises(Killed):
        trainer_mod.train(_config(tmp_path / "b"), policy=tiny_text_policy(), progress=False)
    monkeypatch.setattr(trainer_mod, "train_step", real_step)
    resumed = tiny_text_policy()
    trainer_mod.train(_config(tmp_path / "b"), policy=resumed, progress=False)
    for (name, want), got in zip(ref.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)
    tasks = [
        [json.loads(line)["task"] for line in (tmp_path / r / "run" / "rollouts" / f).open()]
        for r in ("a", "b")
        for f in ("step-3.jsonl",)
    ]
    assert tasks[0] == tasks[1]  # the resumed step drew what the lost one would have


def test_the_packaged_mixture_config_is_valid():
    from importlib import resources

    from mmopsd.config import load_config

    with resources.as_file(resources.files("mmopsd.configs") / "keydoor_mixture.yaml") as path:
        config = load_config(path)
    assert [t.name for t in train_tasks(config)] == ["one-room", "two-rooms"]
    assert extra_tasks(config, "ood")


@pytest.mark.parametrize("method", ["opsd", "opsd_grpo", "sft_teacher", "grpo"])
def test_every_method_preset_trains_on_a_mixture_and_compare_reads_it(tmp_path, method):
    from mmopsd.compare import _run_numbers
    from mmopsd.config import from_dict

    fields = _fields(
        tmp_path,
        method={"group_size": 2},
        rollout={"save": False},
        optimizer={"steps": 1},
        run={"save_every": 0},
    )
    config = from_dict(
        merge(fields, {"method": {"name": method}})
    )  # the preset fills its own fields
    trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    numbers = _run_numbers(tmp_path / "run")
    assert numbers["episodes"]["held_out"] == 4  # two tasks of two episodes each
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n")
               if x]  # fmt: skip
    last = [r for r in records if r["kind"] == "eval"][-1]
    assert numbers["final"]["held_out"] == last["student"]["success"]
    assert set(last["student"]["per_task"]) == {"one-room", "two-rooms"}


def test_a_mixture_run_is_titled_by_its_tasks():
    from mmopsd.training.loop import run_title

    mixture = from_dict({"tasks": [{"env": "mmopsd/KeyDoor-v0"}, {"env": "mmopsd/Sokoban-v0"}]})
    assert run_title(mixture).startswith("2 tasks (mmopsd/KeyDoor-v0, ...) · ")
    assert run_title(from_dict({"tasks": [{"env": "mmopsd/Sokoban-v0"}]})).startswith(
        "mmopsd/Sokoban-v0 · "
    )


def test_a_run_keeps_at_most_a_steps_environments():
    from mmopsd.training.mixture import TaskEnvs

    config = from_dict({"tasks": TASKS, "optimizer": {"batch_size": 2}})
    envs = TaskEnvs(train_tasks(config), "train", keep=2)
    lent = [envs.lend(0), envs.lend(0), envs.lend(1)]  # one step drew task 0 twice
    closed = []
    lent[2].close = lambda: closed.append(2)
    for key, env in zip((0, 0, 1), lent):
        envs.take_back(key, env)
    assert closed == [2] and len(envs.every) == 2  # the third is closed, not kept
    assert [len(envs.free[k]) for k in (0, 1)] == [2, 0]
    assert envs.lend(0) in lent[:2]  # the kept ones serve the next step
    envs.close()
