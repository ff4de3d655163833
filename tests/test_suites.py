"""Suites and the leaderboard: BALROG's metric by hand, rows added and replaced, the CLI."""

from __future__ import annotations

import json
import math

import pytest

from mmopsd.evaluation import EvalResult, EvalTask
from mmopsd.evaluation.leaderboard import update
from mmopsd.evaluation.report import suite_table as table
from mmopsd.evaluation.scores import average, score_of
from mmopsd.evaluation.suites import SUITES, Tolerant


def _result(success=0.0, episodes=4, progression=None, spread=0.0) -> EvalResult:
    return EvalResult(success, 0, 1, episodes, 0.25, 3.0, 12.0, progression=progression,
                      progression_std=spread)  # fmt: skip


def test_success_and_progression_with_their_standard_errors_by_hand():
    s = score_of(EvalTask("mmopsd/BabyAI-GoTo-v0", 4, 10), _result(success=0.75), 2.0)
    assert (s.name, s.metric, s.score) == ("BabyAI-GoTo", "success", 0.75)
    assert s.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    c = score_of(EvalTask("mmopsd/Crafter-v0", 4, 30), _result(progression=0.1, spread=0.2), 1)
    assert (c.metric, c.score, c.stderr) == ("progression", 0.1, pytest.approx(0.1))
    mean, err = average([s, c])
    assert mean == pytest.approx(0.425) and err == pytest.approx(math.hypot(s.stderr, 0.1) / 2)
    assert "| **average** | | **0.425 ±" in table([s, c])


def test_suites_hold_the_benchmarks():
    names = [e.env for e in SUITES.get("all")]
    assert len([n for n in names if "MiniWoB" in n]) == 54  # every task with an expert
    assert {"mmopsd/Crafter-v0", "mmopsd/ALFWorld-v0", "mmopsd/BabyAI-SynthSeq-v0"} <= set(names)
    assert SUITES.get("all") == SUITES.get("gui") + SUITES.get("embodied")
    teachers = {(e.provider, e.provider_kwargs["kind"]) for e in SUITES.get("gui")}
    assert teachers == {("reference", "next_action")}  # told the expert's next action


def test_leaderboard_adds_and_replaces_rows(tmp_path):
    path = tmp_path / "board.md"
    a = score_of(EvalTask("mmopsd/KeyDoor-v0", 4, 1), _result(success=0.5), 1.0)
    b = score_of(EvalTask("mmopsd/Crafter-v0", 4, 1), _result(progression=0.05), 1.0)
    update(path, "model-a", [a, b])
    update(path, "model-a + privileged", [a])
    a2 = score_of(EvalTask("mmopsd/KeyDoor-v0", 4, 1), _result(success=1.0), 1.0)
    png = update(path, "model-a", [a2, b])  # replaced, not added
    rows = json.loads(path.with_suffix(".json").read_text())
    assert list(rows) == ["model-a", "model-a + privileged"]
    text = path.read_text()
    assert text.splitlines()[0] == "| model | KeyDoor | Crafter | average |"
    assert text.count("| model-a |") == 1 and "| model-a | 1.00 ± 0.00 |" in text
    assert "headroom self-distillation can close" in text
    assert png.stat().st_size > 1000


def test_the_tolerant_provider_falls_back_to_the_student_context():
    from mmopsd.privileged import build_provider

    from mmopsd.types import user

    provider = Tolerant(build_provider("hint"))
    assert provider([user("go")], {"hint": "left"}).messages[-1].text.endswith("Hint: left")
    assert provider([user("go")], {}).messages[-1].text == "go"


def test_eval_suite_cli_writes_a_leaderboard_row(tmp_path, capsys):
    from mmopsd.cli import main
    from mmopsd.testing import tiny_text_policy

    pytest.importorskip("minigrid")
    pytest.importorskip("crafter")
    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path / "m")
    policy.tokenizer.save_pretrained(tmp_path / "m")
    board = tmp_path / "lb" / "board.md"
    args = ["eval", "--suite", "embodied", "--model", str(tmp_path / "m"), "--episodes", "1"]
    args += ["--max-turns", "1", "--leaderboard", str(board), "--label", "tiny"]
    assert main(args) == 0
    assert main([*args[:-1], "tiny teacher", "--with-privileged"]) == 0
    text = board.read_text()
    assert "| tiny |" in text and "| tiny teacher |" in text and "BabyAI-SynthSeq" in text
    assert board.with_suffix(".png").is_file()


def test_single_env_eval_with_privileged_uses_the_provider(tmp_path, capsys):
    from mmopsd.cli import main
    from mmopsd.testing import tiny_text_policy

    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path / "m")
    policy.tokenizer.save_pretrained(tmp_path / "m")
    args = ["eval", "--model", str(tmp_path / "m"), "--episodes", "2", "--env", "mmopsd/Sokoban-v0"]
    assert main(args) == 0  # the student needs no privileged information
    capsys.readouterr()
    # The teacher's view asks the provider (hint) for a key Sokoban does not give.
    assert main([*args, "--with-privileged"]) == 2
    assert "provider 'hint' needs info['privileged']['hint']" in capsys.readouterr().err


def test_a_leaderboard_of_many_environments_gives_each_a_row(tmp_path):
    from mmopsd.evaluation.report import WIDE

    envs = [f"mmopsd/MiniWoB-task{i}-v0" for i in range(WIDE + 1)]
    scores = [score_of(EvalTask(e, 4, 1), _result(success=0.5), 1.0) for e in envs]
    update(tmp_path / "board.md", "a", scores)
    png = update(tmp_path / "board.md", "a + privileged", scores[:-1])
    lines = (tmp_path / "board.md").read_text().splitlines()
    assert lines[0] == "| environment | a | a + privileged |"
    assert lines[2] == "| MiniWoB-task0 | 0.50 ± 0.25 | 0.50 ± 0.25 |"
    assert lines[2 + WIDE] == f"| MiniWoB-task{WIDE} | 0.50 ± 0.25 | |"  # not played
    assert lines[3 + WIDE].startswith("| average | **0.500 ± ")
    assert png.stat().st_size > 1000
