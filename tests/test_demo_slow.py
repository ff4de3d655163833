"""End-to-end self-distillation of the packaged SmolLM2-135M on KeyDoor (minutes on CPU)."""

from __future__ import annotations

import json
import math

import pytest

from mmopsd.cli import main

pytestmark = pytest.mark.slow


def test_keydoor_demo_learns_the_rule(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "demo",
            "--quiet",
            "--set",
            f"run.out_dir={out}",
            "--set",
            "optimizer.steps=20",
            "--set",
            "evaluation.every=0",
            "--set",
            "run.report_to=[tensorboard]",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["student_success_after"] >= 0.85
    assert summary["student_success_after"] > summary["student_success_before"] + 0.2
    assert (out / "curve.png").is_file()
    assert "student after training" in capsys.readouterr().out
    _tensorboard_equals_metrics(out)


def _tensorboard_equals_metrics(out):
    """Every number of the run's metrics.jsonl is in its TensorBoard events, same step, same
    value (float32)."""
    pytest.importorskip("tensorboard")
    from mmopsd.tracking.reading import expected_scalars, tensorboard_scalars
    from mmopsd.training.metrics import MetricsLog

    want = expected_scalars(MetricsLog(out / "metrics.jsonl").read())
    logged = tensorboard_scalars(out / "tensorboard")
    assert "train/loss" in want and len(want["train/loss"]) == 20
    for name, by_step in want.items():
        for step, value in by_step.items():
            assert math.isclose(logged[name][step], value, rel_tol=1e-6, abs_tol=1e-30), name


def test_eval_command_on_a_run_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "demo",
                "--quiet",
                "--set",
                f"run.out_dir={out}",
                "--set",
                "optimizer.steps=1",
                "--set",
                "evaluation.episodes=4",
            ]
        )
        == 0
    )
    capsys.readouterr()
    result = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(out), "--episodes", "8", "--out", str(result)]) == 0
    data = json.loads(result.read_text())
    assert (
        data["episodes"] == 8 and 0.0 <= data["ci_low"] <= data["success"] <= data["ci_high"] <= 1.0
    )


def test_example_script_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "keydoor_opsd.py"
    done = subprocess.run(
        [sys.executable, str(script), "--steps", "1", "--batch", "2", "--eval-episodes", "4"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "held-out success after" in done.stdout


@pytest.mark.parametrize(
    ("script", "overrides"),
    [
        (
            "keydoor_multiroom.py",
            ["optimizer.steps=1", "optimizer.batch_size=4", "evaluation.episodes=4"],
        ),
        (
            "alfworld_expert_plan.py",
            [
                "optimizer.steps=1",
                "optimizer.batch_size=2",
                "optimizer.micro_batch_size=2",
                "evaluation.episodes=2",
                "rollout.max_turns=3",
            ],
        ),
    ],
)
def test_multi_turn_examples_run(tmp_path, script, overrides):
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / script
    done = subprocess.run(
        [sys.executable, str(path), *overrides, f"run.out_dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "student after training" in done.stdout
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(records[-1])["kind"] == "summary"


@pytest.mark.sweep  # every environment of every suite, twice: 6 minutes of 2 cores
def test_the_all_suite_on_smollm2_writes_a_leaderboard(tmp_path, capsys):
    """Every benchmark of ``all`` (MiniWoB++ in Chromium, BabyAI, Crafter, ALFWorld) with
    the packaged model, one episode of one turn each, student and teacher rows."""
    board = tmp_path / "board.md"
    base = ["eval", "--suite", "all", "--model", "smollm2-135m", "--episodes", "1"]
    base += ["--max-turns", "1", "--leaderboard", str(board)]
    assert main(base) == 0
    assert main([*base, "--with-privileged"]) == 0
    lines = board.read_text().splitlines()  # 62 environments: one a row, a column per model
    assert lines[0] == "| environment | smollm2-135m | smollm2-135m + privileged |"
    names = [line.split(" | ")[0].removeprefix("| ") for line in lines[2:] if line[:2] == "| "]
    assert len(names) == 63 and names[-1] == "average"  # 54 MiniWoB++ tasks, 8 embodied
    assert "MiniWoB-email-inbox" in names and board.with_suffix(".png").is_file()


def test_babyai_demo_runs_a_step(tmp_path):
    out = tmp_path / "run"
    args = [
        "demo",
        "babyai",
        "--quiet",
        "--set",
        f"run.out_dir={out}",
        "--set",
        "optimizer.steps=1",
    ]
    args += [
        "--set",
        "evaluation.episodes=2",
        "--set",
        "optimizer.batch_size=2",
        "--set",
        "rollout.max_turns=2",
    ]
    assert main(args) == 0
    assert (out / "checkpoints" / "step-1").is_dir()


def test_the_exported_model_served_evaluates_as_the_checkpoint_locally(tmp_path, capsys):
    """A trained run's ``model/`` folder, served by ``transformers serve`` and played through
    ``mmopsd eval --base-url``, scores within the interval of the checkpoint's local
    evaluation (both float32 and greedy)."""
    pytest.importorskip("openai", reason="pip install 'mmopsd[serve]'")
    pytest.importorskip("fastapi", reason="transformers serve: pip install 'mmopsd[dev]'")
    from mmopsd.engines.local_server import transformers_serve

    out = tmp_path / "run"
    train = ["demo", "--quiet", "--set", f"run.out_dir={out}", "--set", "optimizer.steps=3",
             "--set", "evaluation.episodes=4", "--set", "evaluation.every=0"]  # fmt: skip
    assert main(train) == 0
    assert (out / "model" / "config.json").is_file() and (out / "model" / "README.md").is_file()
    task = ["--env", "mmopsd/KeyDoor-v0", "--env-kwargs", '{"n_doors": 2, "n_rooms": 1}',
            "--episodes", "32", "--max-new-tokens", "4", "--max-turns", "1"]  # fmt: skip
    local = tmp_path / "local.json"
    assert main(["eval", "--checkpoint", str(out), "--dtype", "float32", *task, "--out",
                 str(local)]) == 0  # fmt: skip
    served = tmp_path / "served.json"
    with transformers_serve(out / "model", log=tmp_path / "server.log") as url:
        args = ["eval", "--base-url", url, "--model", str(out / "model"), *task]
        assert main([*args, "--out", str(served)]) == 0
    mine, theirs = json.loads(local.read_text()), json.loads(served.read_text())
    assert mine["ci_low"] <= theirs["success"] <= mine["ci_high"], (mine, theirs)
    capsys.readouterr()
