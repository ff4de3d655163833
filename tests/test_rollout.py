"""Rollouts: exact ids across turns, history windows, invalid actions, failing environments."""

from __future__ import annotations

import re

import pytest
from mmopsd.agents.prompting import PromptSpec
from mmopsd.envs.base import AgentEnv, Outcome
from mmopsd.envs.keydoor import KeyDoorEnv

from mmopsd.rollout import RolloutError, Sampling, rollout
from mmopsd.testing import ScriptedPolicy, tiny_text_policy

SPEC = PromptSpec(assistant_prefix="I open the")


def _answer_right_door(prompt: str) -> str:
    """Knows the hidden rule: reads the last key and opens the door it fits."""
    keys = re.findall(r"You hold a (\w+) key", prompt)
    return f" {KeyDoorEnv().rule[keys[-1]]} door." if keys else " hello"


def test_history_ids_are_never_retokenized():
    policy = tiny_text_policy()
    envs = [KeyDoorEnv(n_rooms=3) for _ in range(4)]
    trajs = rollout(policy, envs, [0, 1, 2, 3], SPEC, Sampling(max_new_tokens=6), max_turns=6)
    retokenized_differs = False
    multi = [t for t in trajs if len(t.turns) > 1]
    assert multi, "the random policy should give invalid answers, so episodes go on"
    for traj in multi:
        for prev, turn in zip(traj.turns, traj.turns[1:]):
            n = len(prev.prompt_ids) + len(prev.response_ids)
            # The next prompt starts with the previous prompt and the sampled ids, as sampled.
            assert turn.prompt_ids[:n] == prev.prompt_ids + prev.response_ids
            again = policy.tokenizer(policy.decode(prev.response_ids), add_special_tokens=False)
            retokenized_differs |= again["input_ids"] != prev.response_ids
        for turn in traj.turns:  # piecewise encoding of the messages gives the same ids
            assert (
                policy.encode(turn.messages, assistant_prefix="I open the").ids == turn.prompt_ids
            )
    assert retokenized_differs, "decode+encode must differ somewhere, or this test proves nothing"


@pytest.mark.parametrize("close", [True, False])
def test_incremental_ids_equal_the_chat_template_rendering(close):
    policy = ScriptedPolicy(tiny_text_policy(), _answer_right_door, close=close)
    tok = policy.tokenizer
    [traj] = rollout(policy, [KeyDoorEnv(n_rooms=3)], [7], SPEC, Sampling(), max_turns=3)
    assert len(traj.turns) == 3 and traj.success
    last = traj.turns[-1]
    chat = [{"role": m.role, "content": m.text} for m in last.messages]
    text = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert last.prompt_ids == tok(text + "I open the", add_special_tokens=False)["input_ids"]


def test_history_window_keeps_the_task_and_the_last_exchanges():
    policy = ScriptedPolicy(tiny_text_policy(), _answer_right_door)
    spec = PromptSpec(assistant_prefix="I open the", history=1)
    [traj] = rollout(policy, [KeyDoorEnv(n_rooms=4)], [3], spec, Sampling(), max_turns=4)
    last = traj.turns[-1]
    roles = [m.role for m in last.messages]
    assert roles == ["user", "assistant", "user"]
    assert "room 1 of 4" in last.messages[0].text and "room 4 of 4" in last.messages[-1].text
    assert policy.encode(last.messages, assistant_prefix="I open the").ids == last.prompt_ids
    head = traj.turns[0].prompt_ids
    assert last.prompt_ids[: len(head)] == head  # the task's ids, kept as they were


def test_malformed_actions_get_feedback_and_are_counted_invalid():
    policy = ScriptedPolicy(tiny_text_policy(), lambda _: "I think blue")
    spec = PromptSpec(parser="tag")
    [traj] = rollout(policy, [KeyDoorEnv(n_rooms=2)], [0], spec, Sampling(), max_turns=3)
    assert len(traj.turns) == 3 and all(not t.valid for t in traj.turns)
    assert traj.turns[-1].truncated and not traj.success
    note = traj.turns[1].messages[-1].text
    assert note.startswith("Invalid answer: no <action>...</action> in the answer")


class Exploding(AgentEnv):
    """Raises on its second step."""

    def new_task(self, options):
        return "Say anything."

    def apply(self, action):
        if self._steps == 2:
            raise RuntimeError("simulator crashed")
        return Outcome("Go on.")


def _mixed_rollout(on_env_error):
    policy = ScriptedPolicy(tiny_text_policy(), _answer_right_door)
    envs = [KeyDoorEnv(n_rooms=1), Exploding(), KeyDoorEnv(n_rooms=3)]
    return rollout(
        policy, envs, [1, 2, 3], SPEC, Sampling(), max_turns=3, on_env_error=on_env_error
    )


def test_an_env_that_raises_loses_no_finished_trajectory():
    with pytest.raises(
        RolloutError, match="raised RuntimeError: simulator crashed in step 2"
    ) as err:
        _mixed_rollout("raise")
    done, failed, running = err.value.trajectories
    assert done.success and len(done.turns) == 1 and done.turns[0].terminated
    assert failed.error and failed.turns[-1].truncated and not failed.turns[-1].valid
    assert len(running.turns) == 2  # played up to the failure, nothing dropped


def test_on_env_error_end_finishes_the_other_episodes():
    done, failed, full = _mixed_rollout("end")
    assert done.success and full.success and len(full.turns) == 3
    assert "simulator crashed" in failed.error and len(failed.turns) == 2


def test_an_env_that_ends_an_episode_with_an_error_marks_only_that_trajectory():
    """E.g. MiniWoB's browser dying: the env answers truncated with ``info["error"]``."""
    import gymnasium as gym
    from mmopsd.agents.prompting import PromptSpec
    from mmopsd.envs.base import text_space

    from mmopsd.rollout import Sampling, rollout
    from mmopsd.testing import ScriptedPolicy, tiny_text_policy

    class Fragile(gym.Env):
        observation_space = action_space = text_space()

        def __init__(self, dies: bool) -> None:
            self.dies = dies

        def reset(self, *, seed=None, options=None):
            return "Say ok.", {}

        def step(self, action):
            if self.dies:
                return "Say ok.", 0.0, False, True, {"error": "the browser died"}
            return "done", 1.0, True, False, {"success": True}

    policy = ScriptedPolicy(tiny_text_policy(), lambda prompt: "ok")
    trajs = rollout(policy, [Fragile(True), Fragile(False)], [0, 1], PromptSpec(), Sampling(4))
    assert trajs[0].error == "the browser died" and not trajs[0].success
    assert trajs[1].error is None and trajs[1].success


def test_expert_agreement_counts_only_turns_whose_environment_names_the_expert_action():
    from mmopsd.evaluation import expert_agreement
    from mmopsd.types import Encoded, Turn

    def turn(action, info):
        return Turn(
            messages=[], prompt=Encoded(ids=[1]), response_ids=[2], action=action, info=info
        )

    def expert(action):
        return {"privileged": {"next_action": action}}

    turns = [
        turn("Go  Forward ", expert("go forward")),  # case and spaces do not count
        turn("turn left", expert("turn right")),
        turn(None, expert("pick up")),  # an unparsed answer disagrees
        turn("turn left", {}),  # no expert action: not scored
        turn("turn left", {"privileged": {"hint": "left"}}),
    ]
    assert expert_agreement(turns) == pytest.approx(1 / 3)
    assert expert_agreement(turns[3:]) is None


def test_a_click_that_hits_the_experts_target_agrees_by_id_or_by_coordinates():
    from mmopsd.evaluation import expert_agreement
    from mmopsd.types import Encoded, Turn

    def turn(action, grounded):
        info = {"privileged": {"next_action": "click(40, 80)"}, "outcome": {}}
        if grounded is not None:
            info["outcome"]["grounded"] = grounded
        return Turn(messages=[], prompt=Encoded(ids=[1]), response_ids=[2], action=action,
                    info=info)  # fmt: skip

    turns = [
        turn("click_element(6)", True),  # the target element by its id
        turn("click(38, 83)", True),  # inside the target's box
        turn("click_element(7)", False),  # another element
        turn('type("ok")', None),  # not a click: compared as text
    ]
    assert expert_agreement(turns) == pytest.approx(2 / 4)
    typed = Turn(messages=[], prompt=Encoded(ids=[1]), response_ids=[2], action='type("a")',
                 info={"privileged": {"next_action": 'type("b")'}, "outcome": {"grounded": True}})  # fmt: skip
    assert expert_agreement([typed]) == 0.0  # a grounded flag never makes a typed text agree


def test_only_environments_that_allow_it_step_in_threads():
    import threading

    from mmopsd.rollout import _each

    main = threading.get_ident()
    where = _each(lambda x: (x, threading.get_ident()), [0, 1, 2, 3], [True, False, True, False])
    assert [x for x, _ in where] == [0, 1, 2, 3]
    assert where[1][1] == main and where[3][1] == main  # a game engine steps in this thread
    assert where[0][1] != main and where[2][1] != main  # browsers step in worker threads
    alone = _each(lambda x: threading.get_ident(), [0, 1], [True, False])
    assert alone == [main, main]  # one threaded item is not worth a thread
