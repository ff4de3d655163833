"""``mmopsd compare``: presets as arms, and (slow) a real comparison of two
presets that resumes after a kill without redoing finished runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml

from mmopsd.compare import arm_of, arms_for_methods
from mmopsd.config import merge
from mmopsd.errors import ConfigError


def test_method_arms_replace_the_fields_their_preset_defines():
    base = {"method": {"loss": "jsd", "rl": "add"}, "optimizer": {"lr": 1e-4}}
    arms = {a.name: a.data for a in arms_for_methods(base, ["opsd", "sft_teacher"])}
    assert arms["opsd"] == {"method": {"loss": "jsd", "name": "opsd"}, "optimizer": {"lr": 1e-4}}
    assert arms["sft_teacher"] == {"method": {"name": "sft_teacher"}, "optimizer": {"lr": 1e-4}}
    with pytest.raises(ConfigError, match="unknown method 'ppo'"):
        arms_for_methods(base, ["ppo"])
    with pytest.raises(ConfigError, match="lists a method twice"):
        arms_for_methods(base, ["grpo", "grpo"])


def test_an_arm_is_the_base_config_with_its_own_overrides():
    base = {
        "method": {"loss": "jsd", "rl": "add", "loss_kwargs": {"top_k": 5}},
        "optimizer": {"lr": 1e-4},
    }
    mixed = arm_of(
        base,
        ["opsd-mixed", "method.name=opsd", "method.teacher_share=0.5", "method.loss_kwargs.beta=1"],
    )
    assert mixed.name == "opsd-mixed"
    # opsd fixes rl (and its teacher_share, which the arm sets itself and so keeps)
    assert mixed.data == {
        "method": {"loss": "jsd", "loss_kwargs": {"top_k": 5, "beta": 1}, "name": "opsd",
                   "teacher_share": 0.5},
        "optimizer": {"lr": 1e-4},
    }  # fmt: skip
    assert base["method"]["loss_kwargs"] == {"top_k": 5}  # the base is left as it was
    grpo = arm_of(base, ["grpo4", "method.name=grpo", "method.group_size=4", "method.rl=add"])
    m = grpo.data["method"]
    assert m["group_size"] == 4 and m["rl"] == "add" and "loss" in m
    slow = arm_of(base, ["slow", "optimizer.lr=2.0e-5"]).data
    assert slow == {**base, "optimizer": {"lr": 2e-5}}
    with pytest.raises(ConfigError, match="needs a name first"):
        arm_of(base, ["optimizer.lr=1e-5"])
    with pytest.raises(ConfigError, match="key=value"):
        arm_of(base, ["x", "lr"])
    with pytest.raises(ConfigError, match="config key 'lr' is now optimizer.lr"):
        arm_of(base, ["x", "lr=1e-5"])


def test_the_cli_takes_arms_beside_methods(tmp_path):
    from mmopsd.cli import parser
    from mmopsd.cli.compare import arms_of

    def arms(*argv):
        return arms_of(parser().parse_args(["compare", "--out", str(tmp_path), *argv]))

    with pytest.raises(ConfigError, match="either --methods or --arm"):
        arms("--seeds", "0")
    config = tmp_path / "c.yaml"
    config.write_text("optimizer: {lr: 0.001}\n")
    got = arms("--config", str(config), "--methods", "opsd", "--arm", "mixed",
               "method.teacher_share=0.25", "--arm", "slow", "optimizer.lr=2.0e-5")  # fmt: skip
    got = [(a.name, a.data.get("method", {}).get("teacher_share"), a.data["optimizer"]["lr"])
           for a in got]  # fmt: skip
    assert got == [
        ("opsd", None, 0.001), ("mixed", 0.25, 0.001), ("slow", None, 2e-5)
    ]  # fmt: skip


def _command(out: Path, demo: Path) -> list[str]:
    return [
        sys.executable, "-m", "mmopsd", "compare", "--config", str(demo),
        "--methods", "opsd,sft_teacher", "--seeds", "0,1", "--out", str(out), "--quiet",
        "--set", "optimizer.steps=1", "--set", "optimizer.batch_size=4", "--set", "optimizer.micro_batch_size=4",
        "--set", "evaluation.episodes=4", "--set", "evaluation.every=0",
        "--set", "evaluation.retain=[{env: mmopsd/KeyDoor-v0, env_kwargs: {rule_seed: 7}, name: rule7}]",
    ]  # fmt: skip


@pytest.mark.slow
def test_compare_of_two_presets_resumes_after_a_kill_without_redoing_finished_runs(tmp_path):
    out = tmp_path / "cmp"
    first = out / "opsd" / "seed-0"
    with resources.as_file(resources.files("mmopsd.configs") / "keydoor_demo.yaml") as demo:
        command = _command(out, demo)
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 900
        while not (first / "summary.json").exists() and time.time() < deadline:
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # killed during the second run
        proc.wait()
        assert (first / "summary.json").exists()
        finished = (first / "metrics.jsonl").read_bytes()
        stamp = (first / "metrics.jsonl").stat().st_mtime_ns
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (first / "metrics.jsonl").read_bytes() == finished  # not redone
    assert (first / "metrics.jsonl").stat().st_mtime_ns == stamp
    summary = json.loads((out / "compare.json").read_text())
    assert sorted(summary["arms"]) == ["opsd", "sft_teacher"]
    for arm in summary["arms"].values():
        assert arm["final"]["held_out"]["seeds"] == 2 and arm["final"]["held_out"]["episodes"] == 8
        assert "retain change rule7" in arm["final"]
    assert set(summary["improvement"]["opsd"]) == {"sft_teacher"}
    table = (out / "compare.md").read_text()
    assert "| opsd |" in table and "| sft_teacher |" in table and "retain change rule7" in table
    assert (out / "compare.png").stat().st_size > 1000


def _mixture_run(run: Path, before: float, after: float, per_task: dict[str, float]) -> None:
    """A finished run's files: a mixture of tasks, two timed steps, two timed evaluations,
    and step 2 played twice (a resumed run)."""

    def evaluation(step, success, tasks):
        tasks = {t: {"success": v, "episodes": 4.0} for t, v in tasks.items()}
        student = {"success": success, "episodes": 4 * len(tasks), "per_task": tasks}
        return {"kind": "eval", "step": step, "student_success": success, "student": student,
                "seconds": 60.0}  # fmt: skip

    records = [
        evaluation(0, before, {t: before for t in per_task}),
        {"kind": "train", "step": 1, "seconds": 30.0},
        {"kind": "train", "step": 2, "seconds": 999.0},  # killed; played again below
        {"kind": "train", "step": 2, "seconds": 30.0},
        evaluation(2, after, per_task),
    ]
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "config.yaml").write_text("batch_size: 4\n")


def test_a_comparison_of_mixtures_shows_each_task_and_each_run_minutes(tmp_path):
    from mmopsd.compare import Arm, summarise
    from mmopsd.evaluation.report import compare_table

    tasks = ("MiniWoB-click-test-v0", "MiniWoB-click-tab-v0")
    for seed, tab in ((0, 0.5), (1, 1.0)):
        _mixture_run(tmp_path / "opsd" / f"seed-{seed}", 0.0, (1.0 + tab) / 2, dict(zip(tasks, (1.0, tab))))  # fmt: skip
    summary = summarise([Arm("opsd", {})], [0, 1], tmp_path)
    (run,) = summary["arms"]["opsd"]["runs"][:1]
    assert run["minutes"] == 3.0  # two evaluations and two steps, step 2 counted once
    tab = summary["arms"]["opsd"]["final"]["task MiniWoB-click-tab-v0"]
    assert tab["mean"] == 0.75 and tab["episodes"] == 8 and tab["per_seed"] == [0.5, 1.0]
    table = compare_table(summary)
    assert "| method | click-test | click-tab |" in table
    assert "| opsd | 1.00 [0.68, 1.00] | 0.75 [0.41, 0.93] |" in table
    assert table.count("3.0, 3.0") == 1 and "task MiniWoB" not in table


def test_runs_kept_as_metrics_alone_are_not_trained_again(tmp_path, monkeypatch):
    """A finished run whose checkpoints are gone (its metrics and config kept, as a
    comparison's results are kept between machines) counts as finished; a run without its
    final summary trains."""
    import mmopsd.training.loop as loop
    from mmopsd.compare import Arm, has_final_summary, run_compare

    with resources.as_file(resources.files("mmopsd.configs") / "keydoor_demo.yaml") as demo:
        data = merge(yaml.safe_load(demo.read_text()),
                     {"optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 4}})  # fmt: skip
    for seed in (0, 1):
        _mixture_run(tmp_path / "opsd" / f"seed-{seed}", 0.0, 1.0, {"MiniWoB-click-test-v0": 1.0})
    with (tmp_path / "opsd" / "seed-0" / "metrics.jsonl").open("a") as log:
        log.write(json.dumps({"kind": "summary", "step": 2}) + "\n")
    assert has_final_summary(tmp_path / "opsd" / "seed-0", 2)
    assert not has_final_summary(tmp_path / "opsd" / "seed-0", 3)  # a longer run is not done
    assert not has_final_summary(tmp_path / "opsd" / "seed-1", 2)
    trained = []
    monkeypatch.setattr(loop, "train", lambda config, progress: trained.append(config.run.out_dir))
    summary = run_compare([Arm("opsd", data)], [0, 1], tmp_path, progress=False)
    assert trained == [str(tmp_path / "opsd" / "seed-1")]
    assert summary["arms"]["opsd"]["final"]["held_out"]["per_seed"] == [1.0, 1.0]


def test_the_runs_share_one_cache_named_relative_to_each_run(tmp_path, monkeypatch):
    """Every run of a comparison uses ``out/eval_cache.json``, and its config names it
    relative to the run's directory: kept configs and metrics carry no machine's path."""
    import mmopsd.training.loop as loop
    from mmopsd.compare import Arm, run_compare
    from mmopsd.parallel import Parallel
    from mmopsd.training.components import _cache_path

    with resources.as_file(resources.files("mmopsd.configs") / "keydoor_demo.yaml") as demo:
        data = merge(yaml.safe_load(demo.read_text()),
                     {"optimizer": {"steps": 1, "batch_size": 4, "micro_batch_size": 4}})  # fmt: skip
    seen = []

    def fake_train(config, progress):
        seen.append(config)
        _mixture_run(Path(config.run.out_dir), 0.0, 1.0, {"MiniWoB-click-test-v0": 1.0})

    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    run_compare([Arm("opsd", data), Arm("slow", merge(data, {"optimizer": {"lr": 1e-5}}))], [0, 1], Path("cmp"),
                progress=False)  # fmt: skip
    assert {c.evaluation.cache for c in seen} == {os.path.join("..", "..", "eval_cache.json")}
    assert {_cache_path(c, Parallel()) for c in seen} == {Path("cmp") / "eval_cache.json"}
