"""MiniWoB++ in a real headless Chromium through mmopsd's wrappers."""

from __future__ import annotations

import os
import re
import shutil

import gymnasium as gym
import pytest

pytest.importorskip("miniwob", reason="the miniwob extra is missing: pip install 'mmopsd[miniwob]'")
if os.environ.get("MMOPSD_REQUIRE_BROWSER") and not shutil.which("chromedriver"):
    pytest.fail("MMOPSD_REQUIRE_BROWSER is set but Chromium is missing", pytrace=False)
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip(
        "MiniWoB++ needs Chromium: as root, apt-get install chromium chromium-driver "
        "(make test does this when it runs as root)",
        allow_module_level=True,
    )

import miniwob_sets

TASKS = miniwob_sets.FIRST


@pytest.fixture(scope="module")
def click_button():
    env = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    yield env
    env.close()


def test_clicking_the_privileged_target_centre_wins_click_button(click_button):
    wins = 0
    for seed in range(10):
        _, info = click_button.reset(seed=seed)
        box = info["privileged"]["target_box"]
        x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        *_, terminated, _, out = click_button.step(f"click({x}, {y})")
        wins += bool(terminated and out["success"] and out["grounded"])
    assert wins >= 9


def test_a_killed_browser_ends_its_episode_with_an_error_and_the_next_reset_works(click_button):
    import psutil

    _, info = click_button.reset(seed=100)
    driver = click_button.unwrapped.instance.driver.service.process.pid
    for child in psutil.Process(driver).children(recursive=True):
        child.kill()
    obs, reward, terminated, truncated, out = click_button.step("click(10, 10)")
    assert truncated and not terminated and reward == 0.0
    assert "the browser died" in out["error"]
    assert click_button.observation_space.contains(obs)
    _, info = click_button.reset(seed=101)  # a new browser
    *_, terminated, _, out = click_button.step(info["privileged"]["next_action"])
    assert terminated and out["success"]


def test_bad_actions_are_invalid_and_never_reach_the_page(click_button):
    obs, _ = click_button.reset(seed=5)
    bad_calls = ["click(-5, 99999)", 'type("', 'press("<Nope>")', "click_element(x)", ""]
    for bad in [*bad_calls, 'click_text("no element has these words")', "click_text(Ok)"]:
        new, reward, terminated, _, out = click_button.step(bad)
        assert out["invalid"] and not terminated and reward == 0.0
        assert new["text"].endswith(obs["text"]) and "is not a valid action" in new["text"]


def test_the_hinted_element_call_wins_and_words_after_a_call_are_ignored(click_button):
    _, info = click_button.reset(seed=7)
    call = re.search(r"click_element\(\d+\)", info["privileged"]["hint"]).group(0)
    for bad in ["click(1, 2)x", "click(3) please", "see click_element(4)"]:
        assert click_button.step(bad)[4]["invalid"]
    *_, terminated, _, out = click_button.step(f"{call}; the hint names it")
    assert terminated and out["success"] and not out["invalid"]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_shows_instruction_dom_and_screenshot(task):
    env = gym.make(f"mmopsd/MiniWoB-{task}-v0", disable_env_checker=True)
    try:
        obs, info = env.reset(seed=3)
        assert obs["text"].startswith("Task: ") and "\nPage elements:\n[" in obs["text"]
        assert env.observation_space.contains(obs)
        assert info["privileged"]["a11y"] and "fields" in info["privileged"]
        assert obs["image"].shape == (210, 160, 3) and obs["image"].std() > 0
    finally:
        env.close()


def test_a_closed_environment_gives_its_browser_to_the_next_of_another_task():
    from mmopsd.envs.browsers import POOL

    first = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    first.reset(seed=0)
    first.close()
    idle, reused, started = len(POOL.idle), POOL.reused, POOL.started
    assert idle >= 1
    other = gym.make("mmopsd/MiniWoB-click-link-v0", disable_env_checker=True)
    try:
        assert POOL.reused == reused + 1 and POOL.started == started  # no browser started
        obs, info = other.reset(seed=3)
        assert "Task:" in obs["text"] and "link" in obs["text"].lower()
        box = info["privileged"]["target_box"]
        *_, terminated, _, out = other.step(
            f"click({(box[0] + box[2]) // 2}, {(box[1] + box[3]) // 2})"
        )
        assert terminated and out["success"]
    finally:
        other.close()


def test_a_dead_browser_never_goes_back_to_the_pool():
    from mmopsd.envs.browsers import POOL

    env = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    env.reset(seed=0)
    page = env.unwrapped
    page.instance.driver.quit()
    page.instance.died = True
    idle = len(POOL.idle)
    env.close()
    assert len(POOL.idle) == idle


def test_an_element_click_is_graded_by_whether_it_names_the_target(click_button):
    obs, info = click_button.reset(seed=5)
    ref = re.search(r"click_element\((\d+)\)", info["privileged"]["hint"]).group(1)
    others = [r for r in re.findall(r"^\[(\d+)\] div", obs["text"], re.M) if r != ref]
    *_, out = click_button.step(f"click_element({others[0]})")  # another element on the page
    assert out.get("grounded") is False
    _, info = click_button.reset(seed=5)
    *_, terminated, _, out = click_button.step(f"click_element({ref})")
    assert out["grounded"] is True and terminated and out["success"]


def test_a_text_only_agent_skips_the_screenshots_and_keeps_the_text():
    from mmopsd.agents.prompting import prompt_for

    from mmopsd.rollout import Sampling, rollout
    from mmopsd.testing import tiny_text_policy

    env = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    try:
        obs, _ = env.reset(seed=3)
        assert obs["image"].any()  # a screenshot, before any agent said otherwise
        policy = tiny_text_policy(seed=0)
        assert not policy.sees_images
        spec = prompt_for("mmopsd/MiniWoB-click-button-v0")
        (traj,) = rollout(policy, [env], [4], spec, Sampling(max_new_tokens=4))
        assert traj.turns
        obs, _ = env.reset(seed=5)
        assert not obs["image"].any() and obs["text"].startswith("Task: ")
    finally:
        env.close()


def test_a_click_by_words_clicks_the_element_with_them_and_is_graded(click_button):
    obs, info = click_button.reset(seed=11)
    assert info["privileged"]["next_action"].startswith("click_text(")  # the task names it
    target = info["privileged"]["fields"]["target"]
    words = re.findall(r'^\[\d+\] button "([^"]+)"', obs["text"], re.M)
    other = next(w for w in words if w.lower() != target.lower())
    *_, out = click_button.step(f'click_text("{other}")')
    assert out.get("grounded") is False and not out["invalid"]
    _, info = click_button.reset(seed=11)
    *_, terminated, _, out = click_button.step(f"click_text('{target.upper()}')")  # any case
    assert out["grounded"] is True and terminated and out["success"]


def test_the_target_is_the_element_the_expert_clicks_on_click_widget():
    # click-widget names its widget by kind ("button"), which no element has as text: the
    # fields alone point at the wrong element, the expert's click does not
    env = gym.make("mmopsd/MiniWoB-click-widget-v0", disable_env_checker=True)
    try:
        for seed in range(4):
            _, info = env.reset(seed=seed)
            action = info["privileged"]["next_action"]
            ref = re.fullmatch(r"click_element\((\d+)\)", action).group(1)
            assert f"[{ref}]" in info["privileged"]["hint"]
            *_, out = env.step(action)
            assert out["grounded"] is True and out["success"]
    finally:
        env.close()


TWO_RUNS_SCRIPT = r"""
import psutil
from mmopsd.agents.prompting import prompt_for
from mmopsd.envs.browsers import POOL
from mmopsd.envs.processes import owned_by_run
from mmopsd.evaluation import evaluate
from mmopsd.testing import ScriptedPolicy, tiny_text_policy

env = "mmopsd/MiniWoB-click-button-v0"
policy = ScriptedPolicy(tiny_text_policy(), lambda prompt: 'click_text("ok")')
with owned_by_run():
    result = evaluate(policy, env, prompt_for(env), episodes=3, max_turns=2, max_new_tokens=8)
    started = POOL.started + POOL.reused
children = psutil.Process().children(recursive=True)
_, alive = psutil.wait_procs(children, timeout=15)
print("episodes", result.episodes, "browsers", started, "left", len(alive))
"""


def test_two_evaluations_on_one_machine_both_finish_and_end_only_their_browsers():
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", TWO_RUNS_SCRIPT]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    runs = [subprocess.Popen(command, **pipes) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-2000:]
        words = out.split()
        episodes, browsers, left = (int(words[i]) for i in (1, 3, 5))
        assert episodes == 3 and browsers >= 1 and left == 0, out


TERM_SCRIPT = r"""
import sys, time
import gymnasium as gym
import psutil
import mmopsd.envs
from mmopsd.envs.processes import owned_by_run

with owned_by_run():
    env = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    env.reset(seed=0)
    print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), flush=True)
    time.sleep(600)
"""


def test_a_run_stopped_with_sigterm_ends_its_browsers():
    import signal
    import subprocess
    import sys

    import psutil

    run = subprocess.Popen(
        [sys.executable, "-c", TERM_SCRIPT], text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    pids = [int(p) for p in run.stdout.readline().split()]
    assert pids, run.stderr.read()[-2000:]  # the browser's processes, started
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], 15)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


def test_a_task_without_an_expert_gets_no_guess_in_the_experts_place():
    from mmopsd.envs.miniwob import make_miniwob
    from mmopsd.envs.miniwob_experts import EXPERTS

    assert "click-color" not in EXPERTS
    env = make_miniwob(task="click-color")
    try:
        _, info = env.reset(seed=0)
        privileged = info["privileged"]
        assert privileged["has_expert"] is False
        assert "next_action" not in privileged and "expert_plan" not in privileged
        assert privileged["fields"]  # what the task says is still there
    finally:
        env.close()


def test_an_element_number_the_page_lacks_is_invalid_and_logs_nothing(click_button, caplog):
    """A number no element of the shown page has is the agent's mistake: invalid, with
    feedback, and the page is never asked (MiniWoB's own per-action warnings are dropped)."""
    import logging

    click_button.reset(seed=5)
    new, reward, terminated, _, out = click_button.step("click_element(9999)")
    assert out["invalid"] and not terminated and reward == 0.0
    assert "is not a valid action" in new["text"]
    with caplog.at_level(logging.WARNING):
        logging.warning("Clicking %s failed: %s", 3, "x")  # as MiniWoB logs, from here
        miniwob_log = logging.LogRecord("root", logging.WARNING,
            os.path.join("site", "miniwob", "selenium_actions.py"), 84,
            "Clicking %s failed: %s", (3, "x"), None)  # fmt: skip
        logging.getLogger().handle(miniwob_log)
    assert [r.pathname for r in caplog.records] == [__file__]  # only the one not from MiniWoB


def test_privileged_words_name_no_action_and_follow_the_experts_plan():
    """``target_words`` and ``plan_words`` tell the element by kind, text and region: no
    element number, no call; one subgoal per expert action."""
    env = gym.make("mmopsd/MiniWoB-login-user-v0", split="validation", disable_env_checker=True)
    try:
        _, info = env.reset(seed=0)
    finally:
        env.close()
    p = info["privileged"]
    words = [p["target_words"], *p["plan_words"]]
    assert len(p["plan_words"]) == len(p["expert_plan"]) == 5
    assert p["plan_words"][-1].startswith('click the button "Login"')
    for said in words:
        assert "(" not in said and "[" not in said and not re.search(r"\d", said), said
