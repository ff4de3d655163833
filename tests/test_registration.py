"""One registration per environment: the id, its prompt and its suites in one call; the
MiniWoB++ task list from one source (the tasks with an expert)."""

from __future__ import annotations

import gymnasium as gym
import mmopsd.envs
from mmopsd.agents.prompting import PromptSpec, prompt_for
from mmopsd.envs import SuiteEntry, register, suite
from mmopsd.envs.miniwob_experts import EXPERTS
from mmopsd.envs.registration import unregister

from mmopsd.evaluation import suites


def test_one_call_registers_the_env_its_prompt_and_its_suites():
    spec = PromptSpec(instruction="Pick a door.", assistant_prefix="Door:")
    try:
        _register_and_check(spec)
    finally:
        unregister("testpkg/Doors-v0")
    assert "testpkg/Doors-v0" not in gym.registry and suite("doors") == []


def _register_and_check(spec: PromptSpec) -> None:
    entry = register(
        "testpkg/Doors-v0",
        "mmopsd.envs.keydoor:KeyDoorEnv",
        kwargs={"n_doors": 3},
        prompt=spec,
        suites={"doors": SuiteEntry(episodes=3, max_turns=2)},
    )
    assert gym.spec("testpkg/Doors-v0").kwargs == {"n_doors": 3}
    assert prompt_for("testpkg/Doors-v0") == spec
    assert suite("doors") == [entry]
    assert register("testpkg/Doors-v0", "elsewhere:Env") is entry  # once per id


def test_the_suites_come_from_the_registrations():
    gui = {t.env for t in suites.GUI}
    assert gui == {f"mmopsd/MiniWoB-{t}-v0" for t in EXPERTS}
    assert all(t.provider == "reference" and t.max_turns == 4 for t in suites.GUI)
    embodied = [t.env for t in suites.EMBODIED]
    assert embodied[-2:] == ["mmopsd/Crafter-v0", "mmopsd/ALFWorld-v0"]
    assert suites.SUITES.get("all") == suites.GUI + suites.EMBODIED


def test_every_miniwob_task_with_an_expert_is_registered_with_the_miniwob_prompt():
    assert tuple(EXPERTS) == mmopsd.envs.MINIWOB
    for task in EXPERTS:
        assert prompt_for(f"mmopsd/MiniWoB-{task}-v0").assistant_prefix == "Action:"
