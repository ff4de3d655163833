"""End-to-end self-distillation of the packaged SmolLM2-135M on KeyDoor (minutes on CPU)."""

from __future__ import annotations

import json

import pytest

from mmopsd.cli import main

pytestmark = pytest.mark.slow


def test_keydoor_demo_learns_the_rule(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["demo", "--quiet", "--set", f"out_dir={out}", "--set", "steps=20", "--set", "eval_every=0"]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["student_success_after"] >= 0.85
    assert summary["student_success_after"] > summary["student_success_before"] + 0.2
    assert (out / "curve.png").is_file()
    assert "student after training" in capsys.readouterr().out
