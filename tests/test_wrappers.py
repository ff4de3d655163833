"""The gymnasium wrappers: each one alone, the docs' FrozenLake recipe end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from mmopsd.envs.wrappers import (
    DescribeObservations,
    PrivilegedInfo,
    SeedSplits,
    SuccessInfo,
    TextActions,
)

from mmopsd.config import from_dict
from mmopsd.testing import tiny_text_policy
from mmopsd.training.loop import train

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def frozen_lake() -> str:
    """The docs' FrozenLake snippet, run as written (registered under a test id)."""
    text = (ROOT / "docs" / "custom-environments.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "FrozenLake" in b)
    assert len([line for line in block.splitlines() if line.strip()]) <= 30
    env_id = "readme/FrozenLake-v0"
    if env_id not in gym.registry:
        exec(block.replace("mypkg/FrozenLake-v0", env_id), {})
    return env_id


def test_the_readme_frozen_lake_passes_check_env_and_its_expert_wins(frozen_lake):
    env = gym.make(frozen_lake, disable_env_checker=True)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.splitlines()[1] == "AFFF" and "expert_plan" not in obs
    assert info["admissible_commands"] == ["left", "down", "right", "up"]
    assert info["privileged"]["expert_plan"] == "down, down, right, down, right, right"
    for _ in range(6):
        obs, reward, terminated, _, info = env.step(info["privileged"]["next_action"])
    assert terminated and reward == 1.0 and info["success"]


def test_the_readme_frozen_lake_trains_a_step(frozen_lake, tmp_path):
    config = from_dict(
        {
            "model": {"name": "tiny"},
            "tasks": [
                {
                    "env": frozen_lake,
                    "provider": "reference",
                    "provider_kwargs": {"kind": "expert_plan"},
                }
            ],
            "rollout": {"max_turns": 2, "max_new_tokens": 3},
            "optimizer": {"steps": 1, "batch_size": 2},
            "evaluation": {"episodes": 2},
            "run": {"out_dir": str(tmp_path / "run")},
        }
    )
    summary = train(config, policy=tiny_text_policy(), progress=False)
    assert summary.steps == 1 and (tmp_path / "run" / "checkpoints" / "step-1").is_dir()


class _Counter(gym.Env):
    """A tiny env: Discrete(3) actions, observation = the number of steps taken."""

    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n, self.seed_seen = 0, seed
        return 0, {}

    def step(self, action):
        self.n += 1
        done = action == 2
        return self.n, float(done), done, False, {"last": int(action)}


def test_text_actions_match_names_list_them_and_never_step_on_invalid_text():
    env = TextActions(DescribeObservations(_Counter(), lambda o, e: f"steps: {o}"), ["a", "b", "c"])
    obs, info = env.reset()
    assert info["admissible_commands"] == ["a", "b", "c"]
    obs, _, _, _, info = env.step("B.")
    assert obs == "steps: 1" and info == {**info, "invalid": False, "action": "b", "last": 1}
    for bad in ["", "\x00", "zzz", "x" * 10_000]:
        obs, reward, terminated, _, info = env.step(bad)
        assert info["invalid"] and not terminated and reward == 0.0
        assert obs.endswith("steps: 1") and "not a valid action. Valid actions: a, b, c." in obs
    assert env.unwrapped.n == 1  # the wrapped env never stepped


def test_text_actions_noop_parser_and_step_cap():
    parse = lambda t: int(t[5]) if re.fullmatch(r"push\(\d\)", t) else None  # noqa: E731
    env = TextActions(
        DescribeObservations(_Counter(), lambda o, e: str(o)), parser=parse, noop=0, max_steps=3
    )
    env.reset()
    assert env.step("push(1)")[4]["last"] == 1
    obs, _, _, truncated, info = env.step("push(")
    assert info["invalid"] and info["last"] == 0 and obs.endswith("\n2") and not truncated
    assert env.step("push(0)")[3]  # truncated at the third call
    with pytest.raises(ValueError, match="either named actions or a parser"):
        TextActions(_Counter())


def test_describe_observations_declares_its_space_and_keeps_text_printable():
    image = np.zeros((4, 5, 3), np.uint8)
    env = DescribeObservations(
        _Counter(), lambda o, e: {"text": f"é{o}", "image": image}, image_shape=(4, 5, 3)
    )
    obs, _ = env.reset()
    assert obs["text"] == "?0" and env.observation_space.contains(obs)
    bad = DescribeObservations(_Counter(), lambda o, e: {"text": "x", "image": image})
    with pytest.raises(TypeError, match="describe must return text"):
        bad.reset()


def test_privileged_info_reads_the_unwrapped_env_and_stays_out_of_observations():
    env = PrivilegedInfo(
        DescribeObservations(_Counter(), lambda o, e: str(o)), lambda e: {"secret": e.n * 10}
    )
    obs, info = env.reset()
    assert info["privileged"] == {"secret": 0}
    obs, *_, info = env.step(1)
    assert info["privileged"] == {"secret": 10} and "10" not in obs


def test_seed_splits_never_share_a_seed():
    train_env, test_env = SeedSplits(_Counter(), "train"), SeedSplits(_Counter(), "test")
    train_seeds, test_seeds = set(), set()
    for s in range(500):
        train_env.reset(seed=s)
        test_env.reset(seed=s)
        train_seeds.add(train_env.unwrapped.seed_seen)
        test_seeds.add(test_env.unwrapped.seed_seen)
    assert not train_seeds & test_seeds and len(train_seeds) == len(test_seeds) == 500
    with pytest.raises(ValueError, match="split must be"):
        SeedSplits(_Counter(), "dev")


def test_success_info_marks_a_positive_ending():
    env = SuccessInfo(_Counter())
    env.reset()
    assert env.step(0)[4]["success"] is False
    assert env.step(2)[4]["success"] is True


def _lake_and_model(tmp_path, monkeypatch, module: str, prefix: str) -> list[str]:
    """The docs' FrozenLake as an importable module registering ``prefix/FrozenLake-v0``, and
    a saved tiny model: the common arguments of an ``eval`` of it."""
    text = (ROOT / "docs" / "custom-environments.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "FrozenLake" in b)
    (tmp_path / f"{module}.py").write_text(block.replace("mypkg/", f"{prefix}/"))
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path / "model")
    policy.tokenizer.save_pretrained(tmp_path / "model")
    return ["eval", "--import", module, "--env", f"{prefix}/FrozenLake-v0", "--episodes", "2",
            "--model", str(tmp_path / "model"), "--max-turns", "2"]  # fmt: skip


def test_eval_imports_the_module_that_registers_a_wrapped_env(tmp_path, monkeypatch, capsys):
    from mmopsd.cli import main

    assert main(_lake_and_model(tmp_path, monkeypatch, "lake_module", "lakemod")) == 0
    assert '"episodes": 2' in capsys.readouterr().out


def test_eval_of_the_teacher_with_the_provider_named_on_the_command_line(
    tmp_path, monkeypatch, capsys
):
    """The docs' FrozenLake supplies ``next_action`` and ``expert_plan`` but no ``hint``:
    its teacher is evaluated with ``--provider reference``, and the default ``hint`` says
    which key is missing."""
    from mmopsd.cli import main

    args = [
        *_lake_and_model(tmp_path, monkeypatch, "lake_teacher", "lakeprov"),
        "--with-privileged",
    ]
    assert main(args) == 2
    assert "provider 'hint' needs info['privileged']['hint']" in capsys.readouterr().err
    out = tmp_path / "teacher.json"
    reference = ["--provider", "reference", "--provider-kwargs", '{"kind": "next_action"}']
    assert main([*args, *reference, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["episodes"] == 2


def test_a_wrapped_environment_without_a_prompt_is_shown_its_actions():
    from mmopsd.agents.prompting import prompt_for
    from mmopsd.envs.wrappers import wrap

    env = wrap(
        gym.make("Taxi-v4"),
        describe=lambda obs, env: f"state {obs}",
        actions={"south": 0, "north": 1, "east": 2, "west": 3, "pickup": 4, "dropoff": 5},
    )
    obs, info = env.reset(seed=0)
    spec = prompt_for("Taxi-v4")
    text = spec.messages(obs, info)[-1].text
    assert "Admissible actions: south, north, east, west, pickup, dropoff." in text
    assert text.endswith("Reply with exactly one of these actions.")
    assert spec.parse("north", info).valid


def test_a_reply_naming_exactly_one_admissible_action_is_that_action():
    from mmopsd.agents.prompting import prompt_for

    spec, info = (
        prompt_for("Unknown-v0"),
        {"admissible_commands": ["left", "down", "open drawer 1"]},
    )
    assert spec.assistant_prefix == "Action:" and spec.parser == "mention"
    assert spec.parse(" down", info).action == "down"
    assert spec.parse(" The best action now is down.", info).action == "down"
    assert spec.parse(" I would open drawer 1 now", info).action == "open drawer 1"
    two = spec.parse(" left, then down", info)
    assert not two.valid and "names 2 actions (left, down); reply with exactly one" in two.error
    none = spec.parse(" downwards!", info)
    assert not none.valid and "not an admissible action" in none.error


def _cliff_walking(split: str = "train", **kw):
    """Gymnasium's CliffWalking wrapped as the docs wrap FrozenLake: a map, its moves, the
    shortest path as the expert."""
    from mmopsd.envs.wrappers import wrap

    moves = {"up": 0, "right": 1, "down": 2, "left": 3}

    def describe(state, cliff):
        rows = [["C" if cliff._cliff[r, c] else "." for c in range(12)] for r in range(4)]
        rows[3][11], rows[state // 12][state % 12] = "G", "A"
        return "Walk to G; C is the cliff.\n" + "\n".join("".join(r) for r in rows)

    def expert(cliff):
        paths, todo = {cliff.s: []}, [cliff.s]
        for s in todo:
            for name, a in moves.items():
                nxt = cliff.P[s][a][0][1]
                if nxt not in paths and not cliff._cliff[nxt // 12, nxt % 12]:
                    paths[nxt] = [*paths[s], name]
                    todo.append(nxt)
        plan = paths.get(47, [])
        return {"expert_plan": ", ".join(plan), "next_action": plan[0] if plan else ""}

    return wrap(
        gym.make("CliffWalking-v1", **kw), describe=describe, actions=moves, privileged=expert,
        success=lambda reward, terminated, info: terminated, split=split, max_steps=16,
    )  # fmt: skip


@pytest.mark.parametrize("env_id", ["lake", "cliff"])
def test_the_default_agent_answers_wrapped_environments_in_their_actions(env_id, frozen_lake):
    """Gymnasium's FrozenLake and CliffWalking, wrapped with no prompt of their own, played by
    the packaged model as the teacher told the expert's next action: its answers are actions
    (the default prompt's answer prefix, a sentence naming one action accepted)."""
    from mmopsd.agents.prompting import prompt_for
    from mmopsd.privileged import PROVIDERS

    from mmopsd.evaluation import evaluate
    from mmopsd.policies.loading import load_policy

    if env_id == "cliff":
        env_id = "test/CliffWalking-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=_cliff_walking)
    else:
        env_id = frozen_lake
    policy = load_policy("smollm2-135m")
    result = evaluate(
        policy, env_id, prompt_for(env_id), episodes=4, max_turns=6, split="train",
        provider=PROVIDERS.get("reference")(kind="next_action"),
    )  # fmt: skip
    assert result.invalid_rate < 0.1, result
