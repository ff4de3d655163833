"""Environments: the gymnasium checker over the whole registry, the base class, KeyDoor."""

from __future__ import annotations

import os
import shutil

import gymnasium as gym
import miniwob_sets
import mmopsd.envs
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from mmopsd.envs.base import AgentEnv, Outcome
from mmopsd.envs.keydoor import KeyDoorEnv

from mmopsd.errors import UnknownNameError
from mmopsd.rollout import make_envs

# The further MiniWoB++ tasks (``miniwob_sets.MORE``) are checked in the slow suite (a browser each).
MORE = {f"mmopsd/MiniWoB-{t}-v0" for t in miniwob_sets.MORE}
ENV_IDS = [pytest.param(k, marks=[pytest.mark.slow, pytest.mark.sweep]) if k in MORE else k
           for k in sorted(mmopsd.envs.REGISTRATIONS)]  # fmt: skip


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_registered_env_passes_check_env(env_id, alfworld_data):
    if env_id == "mmopsd/ALFWorld-v0":
        pytest.importorskip("alfworld", reason="the alfworld extra is not installed")
    if env_id.startswith("mmopsd/BabyAI"):
        pytest.importorskip("minigrid", reason="the babyai extra is not installed")
    if env_id.startswith("mmopsd/Crafter"):
        pytest.importorskip("crafter", reason="the crafter extra is not installed")
    if env_id.startswith("mmopsd/MiniWoB"):
        pytest.importorskip("miniwob", reason="the miniwob extra is not installed")
        if not shutil.which("chromedriver") and not os.environ.get("MMOPSD_REQUIRE_BROWSER"):
            pytest.skip("MiniWoB++ needs Chromium: apt-get install chromium chromium-driver")
    env = gym.make(env_id, disable_env_checker=True)
    if env_id.startswith("mmopsd/MiniWoB"):
        # The page renders asynchronously (jQuery UI dialogs fade in), so two resets with one
        # seed can give screenshots a few pixels apart: check_env's exact determinism check
        # compares the text (instruction and DOM) with the screenshot blanked.
        env = _BlankScreenshot(env)
    # Our own environments are checked bare; wrapped benchmarks as the wrapper stack we use.
    check_env(env.unwrapped if isinstance(env.unwrapped, AgentEnv) else env, skip_render_check=True)
    env.close()


class _BlankScreenshot(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    def __init__(self, env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)

    def observation(self, observation):
        return {**observation, "image": np.zeros_like(observation["image"])}


def test_registry_ids_are_versioned_and_lazy():
    for env_id, entry in ((k, r.entry_point) for k, r in mmopsd.envs.REGISTRATIONS.items()):
        assert env_id.startswith("mmopsd/") and "-v" in env_id
        assert isinstance(gym.registry[env_id].entry_point, str)  # imported only on make
        assert entry.startswith("mmopsd.envs.")


def test_keydoor_rooms_hint_and_rewards():
    env = KeyDoorEnv(n_rooms=3)
    obs, info = env.reset(seed=3)
    assert obs.startswith("You are in room 1 of 3.")
    for room in range(3):
        answer = info["privileged"]["answer"]
        assert info["privileged"] == {
            "hint": f"open the {answer} door.",
            "answer": answer,
            "room": room,
        }
        assert env.rule[info["key"]] == answer and info["key"] not in info["doors"]
        obs, reward, terminated, truncated, info = env.step(f"I open the {answer} door.")
        assert reward == pytest.approx(1 / 3) and not truncated
        assert terminated == (room == 2) and info["success"] == (room == 2)
    assert "passed all 3 rooms" in obs


def test_keydoor_wrong_door_ends_the_episode_with_feedback():
    env = KeyDoorEnv(n_rooms=3)
    _, info = env.reset(seed=5)
    wrong = next(d for d in info["doors"] if d != info["privileged"]["answer"])
    obs, reward, terminated, truncated, out = env.step(f"open the {wrong} door")
    assert (reward, terminated, truncated, out["success"]) == (0.0, True, False, False)
    assert out["feedback"] == f"The {wrong} door stays locked." and "episode is over" in obs


def test_keydoor_single_room_keeps_the_original_observation():
    obs, _ = KeyDoorEnv(n_rooms=1).reset(seed=0)
    assert obs.startswith("You hold a ") and obs.endswith("Which door does your key open?")


def test_keydoor_invalid_action_gets_feedback_and_the_episode_goes_on():
    env = KeyDoorEnv(n_rooms=2)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("dance")
    assert reward == 0.0 and not terminated and not truncated and info["invalid"]
    assert "names none of the doors" in obs and "room 1 of 2" in obs
    for _ in range(3):  # the step cap (2 per room) truncates an agent that never answers
        *_, truncated, info = env.step("dance")
    assert truncated and not info["success"]


def test_splits_are_disjoint_streams_and_combinations():
    train = KeyDoorEnv(split="train")
    test = KeyDoorEnv(split="test")
    a = [train.reset(seed=s)[0] for s in range(20)]
    b = [test.reset(seed=s)[0] for s in range(20)]
    assert a != b
    combo = {}
    for split in ("train", "test"):
        env = KeyDoorEnv(
            colours=["red", "blue", "green", "yellow", "purple", "orange"],
            split=split,
            split_by="combination",
            n_rooms=1,
        )
        combo[split] = {
            (i["key"], tuple(sorted(i["doors"])))
            for i in (env.reset(seed=s)[1] for s in range(300))
        }
    assert combo["train"] and combo["test"] and not combo["train"] & combo["test"]


class Guess(AgentEnv):
    """The few-line example environment of docs/custom-environments.md."""

    def new_task(self, options):
        self.secret = int(self.np_random.integers(1, 10))
        return "Guess my number between 1 and 9."

    def admissible(self):
        return [str(i) for i in range(1, 10)]

    def apply(self, action):
        won = int(action) == self.secret
        return Outcome("Right!" if won else "Wrong.", float(won), won, won)

    def privileged(self):
        return {"hint": f"the number is {self.secret}"}


def test_agent_env_base_gives_admissible_commands_feedback_and_truncation():
    env = Guess(max_steps=2)
    check_env(env, skip_render_check=True)
    _, info = env.reset(seed=1)
    assert info["admissible_commands"] == [str(i) for i in range(1, 10)]
    obs, reward, terminated, truncated, out = env.step("ten")
    assert out["invalid"] and not terminated and not truncated and reward == 0.0
    assert "'ten' is not a valid action here. Valid actions: 1, 2" in obs
    secret = info["privileged"]["hint"].split()[-1]
    wrong = "1" if secret != "1" else "2"
    *_, terminated, truncated, out = env.step(wrong)
    assert not terminated and truncated and not out["invalid"]


def test_unknown_env_id_lists_known_ones():
    with pytest.raises(UnknownNameError, match="mmopsd/KeyDoor-v0"):
        make_envs("mmopsd/NoSuchEnv-v0", 1)


def _el(ref, text, tag="button", leaf=True, size=10.0):
    return {"ref": ref, "text": text, "tag": tag, "leaf": leaf, "box": (0.0, 0.0, size, size)}


def test_click_text_picks_the_element_with_those_words():
    from mmopsd.envs.miniwob_page import Page, named

    hidden, node = _el(1, "Ok", size=0.0), _el(2, "Ok", tag="t")
    box, button, later = _el(3, "Ok", tag="div", leaf=False), _el(4, " Ok "), _el(5, "Ok")
    page = [hidden, node, box, button, later, _el(6, "OK"), _el(7, "cancel")]
    assert named(page, "Ok") is button  # seen, not a text node, a leaf, the first
    assert named(page, "OK")["ref"] == 6  # the same case first
    assert named(page, "CANCEL")["ref"] == 7  # else any case
    assert named(page, "Submit") is None and named(page, " ") is None
    experts = Page(page, {})
    assert experts.click_by_text(button) == 'click_text("Ok")'
    assert experts.click_by_text(later) == "click_element(5)"  # its words pick another
    assert experts.click_by_text(_el(8, 'say "hi"')) == "click_element(8)"  # not on the page
    quoted = _el(9, 'say "hi"')
    assert Page([quoted], {}).click_by_text(quoted) == "click_text('say \"hi\"')"


def _raw(ref, text, tag="button", size=10.0):
    flags = [0, 0, 0, 1]
    return {
        "ref": ref,
        "text": text,
        "tag": tag,
        "left": 0.0,
        "top": 0.0,
        "width": size,
        "height": size,
        "flags": flags,
    }


def test_the_target_is_the_element_the_expert_clicks_next():
    from mmopsd.envs.miniwob import expert_click

    page = [_raw(1, "Ok", size=0.0), _raw(2, "Ok"), _raw(3, "cancel", tag="div")]
    assert expert_click(page, "click_element(3)") is page[2]
    assert expert_click(page, 'click_text("ok")') is page[1]  # the one click_text picks
    assert expert_click(page, "click_text('cancel')") is page[2]
    for other in ("click_element(9)", 'click_text("Submit")', 'type("Ok")', "click(5, 5)", "?"):
        assert expert_click(page, other) is None


def test_a_browser_that_fails_to_start_is_tried_again_then_named(monkeypatch):
    from mmopsd.envs import browsers

    class Flaky:
        def __init__(self, failures):
            self.failures, self.starts = failures, 0

        def start(self):
            self.starts += 1
            if self.starts <= self.failures:
                raise OSError("session not created\nfrom chrome not reachable")

    monkeypatch.setattr(browsers.time, "sleep", lambda s: None)
    flaky = Flaky(failures=2)
    browsers._start(flaky)
    assert flaky.starts == 3
    with pytest.raises(RuntimeError, match="did not start in 3 tries .session not created.*memory"):
        browsers._start(Flaky(failures=3))
