"""The evaluation cache: results that cannot change are computed once, and again whenever
anything they depend on changes."""

from __future__ import annotations

import json

import pytest
import torch

from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.evaluation.cache import EvalCache, fingerprint
from mmopsd.policies.precision import bf16_kernels
from mmopsd.testing import tiny_text_policy
from mmopsd.training.loop import train


def test_a_result_is_computed_once_per_key(tmp_path):
    cache = EvalCache(tmp_path / "c.json")
    calls = []

    def compute():
        calls.append(1)
        return {"success": 0.5}

    assert cache.get("student", {"episodes": 4}, compute) == {"success": 0.5}
    assert EvalCache(tmp_path / "c.json").get("student", {"episodes": 4}, compute)["success"] == 0.5
    assert len(calls) == 1
    cache.get("student", {"episodes": 5}, compute)  # another setting: computed again
    cache.get("teacher", {"episodes": 4}, compute)  # another kind of result: computed again
    assert len(calls) == 3


def test_a_damaged_file_is_recomputed_and_no_file_keeps_nothing(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{half")
    assert EvalCache(path).get("s", {}, lambda: {"x": 1}) == {"x": 1}
    assert json.loads(path.read_text())  # rewritten whole
    calls = []
    off = EvalCache(None)
    for _ in range(2):
        off.get("s", {}, lambda: calls.append(1) or {"x": 1})
    assert len(calls) == 2


def test_the_fingerprint_sees_a_change_of_one_weight():
    policy = tiny_text_policy()
    before = fingerprint(policy.model)
    assert fingerprint(tiny_text_policy().model) == before  # same seed, same weights
    with torch.no_grad():
        next(policy.model.parameters())[0, 0] += 1e-3
    assert fingerprint(policy.model) != before


def _config(tmp_path, name, **kw):
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0"}],
        "rollout": {"max_new_tokens": 3},
        "optimizer": {"steps": 1, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 4, "cache": str(tmp_path / "shared.json")},
        "run": {"save_every": 0, "out_dir": str(tmp_path / name), "seed": 0},
    }
    return from_dict(merge(base, kw))


def _first_eval(tmp_path, name):
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
    return next(r for r in rows if r["kind"] == "eval" and r["step"] == 0)


def test_runs_sharing_a_cache_evaluate_the_initial_model_and_teacher_once(tmp_path):
    first = train(_config(tmp_path, "a"), policy=tiny_text_policy(), progress=False)
    second = train(
        _config(tmp_path, "b", run={"seed": 1}), policy=tiny_text_policy(), progress=False
    )
    a, b = _first_eval(tmp_path, "a"), _first_eval(tmp_path, "b")
    assert len(a["eval_cache"]["computed"]) == 2 and not a["eval_cache"]["reused"]
    assert sorted(k.split("-")[0] for k in b["eval_cache"]["reused"]) == ["student", "teacher"]
    assert b["eval_cache"]["file"] == str(tmp_path / "shared.json")
    assert b["student"] == a["student"] and b["teacher"] == a["teacher"]
    assert second.before.success == first.before.success


def test_changing_one_setting_recomputes(tmp_path):
    train(_config(tmp_path, "a"), policy=tiny_text_policy(), progress=False)
    train(
        _config(tmp_path, "b", evaluation={"episodes": 5}),
        policy=tiny_text_policy(),
        progress=False,
    )
    b = _first_eval(tmp_path, "b")
    assert not b["eval_cache"]["reused"] and len(b["eval_cache"]["computed"]) == 2
    assert b["student"]["episodes"] == 5
    train(_config(tmp_path, "c"), policy=tiny_text_policy(seed=1), progress=False)
    c = _first_eval(tmp_path, "c")  # other initial weights: the student and teacher again
    assert not c["eval_cache"]["reused"]


def test_an_empty_setting_turns_the_cache_off(tmp_path):
    train(
        _config(tmp_path, "a", evaluation={"cache": ""}), policy=tiny_text_policy(), progress=False
    )
    assert "eval_cache" not in _first_eval(tmp_path, "a")
    assert not (tmp_path / "shared.json").exists()


@pytest.mark.skipif(not bf16_kernels(), reason="torch runs no bfloat16 attention on this CPU")
def test_mixed_precision_recomputes_and_a_draw_weight_does_not(tmp_path):
    train(_config(tmp_path, "a"), policy=tiny_text_policy(), progress=False)
    mixed = tiny_text_policy()
    mixed.compute_dtype = torch.bfloat16  # the same weights, other products: other episodes
    train(_config(tmp_path, "b"), policy=mixed, progress=False)
    assert not _first_eval(tmp_path, "b")["eval_cache"]["reused"]

    def tasks(weight):
        return [{"env": "mmopsd/KeyDoor-v0", "name": "a", "weight": weight},
                {"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_doors": 3}, "name": "b"}]  # fmt: skip

    for name, weight in (("c", 1.0), ("d", 3.0)):
        config = _config(
            tmp_path, name, tasks=[{"env": TrainConfig.env, **t} for t in tasks(weight)]
        )
        train(config, policy=tiny_text_policy(), progress=False)
    d = _first_eval(tmp_path, "d")["eval_cache"]
    assert sorted(k.split("-")[0] for k in d["reused"]) == ["student", "teacher"]
