"""Gymnasium environments of mmopsd, registered as ``mmopsd/<Name>-v<N>``.

Observations hold what the student may see; privileged data lives in ``info["privileged"]``.
Each environment is registered once, below, with the prompt agents use on it and the suites
that play it (:func:`~mmopsd.envs.registration.register`).
"""

from __future__ import annotations

from mmopsd.agents.prompting import PromptSpec
from mmopsd.envs.crafter import ACTIONS as CRAFTER_ACTIONS
from mmopsd.envs.miniwob_experts import EXPERTS
from mmopsd.envs.registration import REGISTRATIONS, Registration, SuiteEntry, register, suite

__all__ = ["BABYAI", "MINIWOB", "REGISTRATIONS", "Registration", "SuiteEntry", "register", "suite"]

register(
    "mmopsd/KeyDoor-v0",
    "mmopsd.envs.keydoor:KeyDoorEnv",
    prompt=PromptSpec(assistant_prefix="I open the"),
)
register(
    "mmopsd/ZoomQA-v0",
    "mmopsd.envs.zoomqa:ZoomQAEnv",
    prompt=PromptSpec(assistant_prefix="Answer:"),
)
register(
    "mmopsd/Sokoban-v0",
    "mmopsd.envs.sokoban:SokobanEnv",
    prompt=PromptSpec(
        instruction="Reply with one move: up, down, left or right.",
        assistant_prefix="Move:",
        show_admissible=False,
        history=2,
    ),
)
register(
    "mmopsd/GUIClick-v0",
    "mmopsd.envs.gui:GUIClickEnv",
    prompt=PromptSpec(
        instruction="Reply with click(x, y) in screenshot pixels.", assistant_prefix=""
    ),
)
register(
    "mmopsd/GUIForm-v0",
    "mmopsd.envs.gui:GUIFormEnv",
    prompt=PromptSpec(
        instruction='Reply with one action: click(x, y), type("text") or select("option").',
        history=2,
    ),
)
# BabyAI through wrappers: one factory, the level as a keyword.
BABYAI = ("GoToLocal", "GoTo", "Pickup", "Open", "PutNextLocal", "SynthSeq", "GoToObj", "PickupLoc")
BABYAI_PROMPT = PromptSpec(
    instruction="Reply with one action: turn left, turn right, go forward, pick up, drop "
    "or toggle.",
    assistant_prefix="Next action:",
    history=2,
)
BABYAI_SUITE = {"embodied": SuiteEntry(episodes=8, max_turns=10, max_new_tokens=4)}
for _level in BABYAI:
    register(
        f"mmopsd/BabyAI-{_level}-v0",
        "mmopsd.envs.babyai:make_babyai",
        kwargs={"level": _level},
        prompt=BABYAI_PROMPT,
        suites=BABYAI_SUITE if _level not in ("GoToObj", "PickupLoc") else {},
    )

register(
    "mmopsd/Crafter-v0",
    "mmopsd.envs.crafter:make_crafter",
    prompt=PromptSpec(
        instruction=f"Reply with one action: {', '.join(CRAFTER_ACTIONS[:-1])} or "
        f"{CRAFTER_ACTIONS[-1]}.",
        assistant_prefix="Next action:",
        history=2,
    ),
    suites={"embodied": SuiteEntry(episodes=2, max_turns=30, max_new_tokens=6)},
)

register(
    "mmopsd/ALFWorld-v0",
    "mmopsd.envs.alfworld:ALFWorldEnv",
    prompt=PromptSpec(
        system="You are a household robot. Each turn, reply with exactly one admissible action.",
        assistant_prefix="The next action is:",
        show_admissible=True,
        history=4,
    ),
    suites={"embodied": SuiteEntry(episodes=4, max_turns=8, max_new_tokens=12)},
)
# MiniWoB++: every task with an expert (envs/miniwob_experts.py; each won at least 18 of 20
# held-out episodes, benchmarks/results/miniwob_experts.md), one factory, the task a keyword.
MINIWOB = tuple(EXPERTS)
MINIWOB_PROMPT = PromptSpec(
    # The format without a value to copy: no element number, point or text that could be
    # the answer on some page (an example's number was answered on every page).
    instruction="Reply with one action: click_element(N) clicks the element numbered [N] "
    'in the list above, click_text("WORDS") clicks the element whose text is WORDS, '
    'click(X, Y) clicks a point, type("TEXT") types into the focused field and '
    'press("KEY") presses a key.',
    assistant_prefix="Action:",
    history=2,
)
# The GUI teacher is told its task expert's next action, in the wording a 135M model follows
# (benchmarks/results/miniwob_teacher_wording.md), as mmopsd/configs/miniwob_opsd.yaml trains.
NEXT_ACTION = {
    "kind": "next_action",
    "template": "The correct action is {value}.\nAction: {value}\nReply with that action.",
}
MINIWOB_SUITE = {
    "gui": SuiteEntry(
        episodes=8, max_turns=4, max_new_tokens=16, provider="reference",
        provider_kwargs=NEXT_ACTION,
    )
}  # fmt: skip
for _task in MINIWOB:
    register(
        f"mmopsd/MiniWoB-{_task}-v0",
        "mmopsd.envs.miniwob:make_miniwob",
        kwargs={"task": _task},
        prompt=MINIWOB_PROMPT,
        suites=MINIWOB_SUITE,
    )
