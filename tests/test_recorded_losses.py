"""No behaviour change: two training steps of the shipped comparison configs give the losses
recorded before the training methods were restructured (``tests/data/recorded_losses.json``).

The configs are the KeyDoor comparison (``keydoor_demo.yaml``, groups of 4, four methods) and
the MiniWoB++ recipe (``miniwob_opsd.yaml``: opsd, gkd with λ = 0.5, sft_teacher, grpo), each
on a tiny float64 model with the config's own batch and loss, whose replies are scripted
(some win, some lose) so that every term has data. Re-record with
``MMOPSD_RECORD_LOSSES=1 pytest tests/test_recorded_losses.py`` only for a change that means
to move these numbers, and say why in its commit.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from mmopsd.compare import arm_of
from mmopsd.config import apply_overrides, from_dict, load_data
from mmopsd.testing import ScriptedPolicy, tiny_text_policy
from mmopsd.training.loop import build, train_step

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).parent / "data" / "recorded_losses.json"
KEYS = ("loss", "rl_loss", "kl", "grad_norm", "rollout_success", "response_tokens")

KEYDOOR = "mmopsd/configs/keydoor_demo.yaml"
MINIWOB = "mmopsd/configs/miniwob_opsd.yaml"
# The model's replies, in turn (some win, some lose, some are invalid: every term has data).
ANSWERS = {
    KEYDOOR: ["open the red door", "open the blue door", "open the green door", "I open it"],
    MINIWOB: [f"click_element({n})" for n in (2, 3, 4, 5, 6, 7)] + ['click_text("OK")'],
}
ARMS = {
    "keydoor-opsd": (KEYDOOR, ["method.name=opsd", "method.group_size=4"]),
    "keydoor-sft_teacher": (KEYDOOR, ["method.name=sft_teacher", "method.group_size=4"]),
    "keydoor-grpo": (KEYDOOR, ["method.name=grpo", "method.group_size=4"]),
    "keydoor-opsd_grpo": (KEYDOOR, ["method.name=opsd_grpo", "method.group_size=4"]),
    "keydoor-grpo-ppo-kl": (
        KEYDOOR,
        ["method.name=grpo", "method.group_size=4", "method.ppo_epochs=2", "method.kl_coef=0.1"],
    ),
    "keydoor-tip-discount": (
        KEYDOOR,
        [
            "method.name=opsd",
            "method.token_weighting=tip",
            "method.turn_weighting=discount",
            "rollout.max_turns=2",
        ],
    ),
    "miniwob-opsd": (MINIWOB, ["method.name=opsd"]),
    "miniwob-lambda0.5": (MINIWOB, ["method.name=gkd", "method.teacher_share=0.5"]),
    "miniwob-sft_teacher": (MINIWOB, ["method.name=sft_teacher"]),
    "miniwob-grpo": (MINIWOB, ["method.name=grpo", "method.group_size=4"]),
}


def two_steps(
    config_path: str, overrides: list[str], out: Path, trained: list | None = None
) -> list[dict[str, float]]:
    """The metrics of the first two training steps of a comparison arm (a config and the
    arm's overrides, as ``mmopsd compare --arm`` reads them) on the tiny float64 model; the
    model trained is appended to ``trained`` when given."""
    arm = arm_of(load_data(ROOT / config_path), ["arm", *overrides])
    data = apply_overrides(arm.data, ["model.name=tiny", f"run.out_dir={out}"])
    config = from_dict(data)
    base = tiny_text_policy()
    base.model.double()
    answers = itertools.cycle(ANSWERS[config_path])
    policy = ScriptedPolicy(base, lambda _prompt: next(answers))
    c = build(config, policy)
    if trained is not None:
        trained.append(c.policy.model)
    try:
        return [_picked(train_step(step, c, config)) for step in (1, 2)]
    finally:
        c.envs.close()


def _picked(record: dict) -> dict[str, float]:
    return {k: float(record[k]) for k in KEYS}


def _marks(name: str) -> list:
    """MiniWoB++ arms need Chromium (CI requires it; elsewhere they skip without it)."""
    if not name.startswith("miniwob") or shutil.which("chromedriver"):
        return []
    if os.environ.get("MMOPSD_REQUIRE_BROWSER"):
        return []  # fails loudly in the environment instead of skipping
    return [
        pytest.mark.skip(reason="Chromium is missing: apt-get install chromium chromium-driver")
    ]


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in ARMS])
def test_two_steps_give_the_recorded_losses(name, tmp_path):
    got = two_steps(*ARMS[name], tmp_path / "run")
    if os.environ.get("MMOPSD_RECORD_LOSSES"):
        recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        recorded[name] = got
        RECORD.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(RECORD.read_text())[name]
    for step, (g, w) in enumerate(zip(got, want), start=1):
        for key in KEYS:
            # 1e-4: another CPU's summation order moves float32 parts (the policy gradient's
            # chunks) by about 1e-6; a changed term moves them by far more.
            assert math.isclose(g[key], w[key], rel_tol=1e-4, abs_tol=1e-9), (step, key, g, w)


@pytest.mark.parametrize("name", ["keydoor-opsd", "keydoor-grpo-ppo-kl"])
def test_activation_checkpointing_gives_the_recorded_losses(name, tmp_path):
    """Recomputing activations in the backward pass changes memory, never the numbers."""
    from mmopsd.policies.checkpointing import recomputes_activations

    config_path, overrides = ARMS[name]
    trained: list = []
    got = two_steps(
        config_path, [*overrides, "model.activation_checkpointing=true"], tmp_path, trained
    )
    assert [recomputes_activations(m) for m in trained] == [True]
    want = json.loads(RECORD.read_text())[name]
    for step, (g, w) in enumerate(zip(got, want), start=1):
        for key in KEYS:
            # As above (another CPU's kernels); here too a checkpointed training forward
            # feeds every row whole instead of a shared beginning once (about 3e-8). The
            # gradients themselves are compared exactly in tests/test_checkpointing.py.
            assert math.isclose(g[key], w[key], rel_tol=1e-4, abs_tol=1e-9), (step, key, g, w)
