"""Providers: the exact teacher messages they build, missing keys, composition, the leak guard."""

from __future__ import annotations

import json

import pytest
from mmopsd.privileged import (
    Episode,
    MissingPrivilegedKey,
    PrivilegedLeak,
    build_provider,
    check_no_leak,
)
from mmopsd.privileged.base import PROVIDERS, Provider
from PIL import Image

from mmopsd.config import from_dict
from mmopsd.types import Encoded, Message, Trajectory, Turn, generated, user

STUDENT = [Message("system", "Be brief."), user("You hold a red key. Which door?")]


def _texts(ctx):
    return [(m.role, m.text) for m in ctx.messages]


def test_hint_appends_to_the_last_user_turn_and_names_missing_keys():
    ctx = build_provider("hint", template=" Hint: {hint}")(STUDENT, {"hint": "open blue."})
    assert _texts(ctx) == [
        ("system", "Be brief."),
        ("user", "You hold a red key. Which door? Hint: open blue."),
    ]
    assert STUDENT[1].text == "You hold a red key. Which door?"  # the student's copy is untouched
    with pytest.raises(
        MissingPrivilegedKey,
        match="provider 'hint' needs info\\['privileged'\\]\\['hint'\\], but the environment supplied plan",
    ):
        build_provider("hint")(STUDENT, {"plan": "x"})


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (
            "expert_plan",
            ["go to desk 1", "take pen 1"],
            "\n\nExpert plan from here: go to desk 1, then take pen 1",
        ),
        ("next_action", "go to desk 1", "\n\nThe expert's next action: go to desk 1"),
        ("solution", "x = 2", "\n\nReference solution:\nx = 2"),
        ("demonstration", "A then B", "\n\nA demonstration of the task:\nA then B"),
    ],
)
def test_reference_kinds(kind, value, expected):
    ctx = build_provider("reference", kind=kind)(STUDENT, {kind: value})
    assert _texts(ctx)[-1] == ("user", "You hold a red key. Which door?" + expected)
    with pytest.raises(
        MissingPrivilegedKey,
        match=f"provider 'reference' needs info\\['privileged'\\]\\['{kind}'\\]",
    ):
        build_provider("reference", kind=kind)(STUDENT, {})


def test_reference_in_a_system_message():
    ctx = build_provider("reference", kind="solution", place="system")(STUDENT, {"solution": "42"})
    assert _texts(ctx) == [("system", "Reference solution:\n42"), *_texts_of(STUDENT)]


def _texts_of(messages):
    return [(m.role, m.text) for m in messages]


def _turn(text, *, feedback=None, prefix="I open the"):
    info = {"privileged": {}, "outcome": {"feedback": feedback} if feedback else {}}
    return Turn(STUDENT, Encoded([1]), [5], response_text=text, assistant_prefix=prefix, info=info)


def test_env_feedback_shows_the_attempt_and_the_feedback():
    traj = Trajectory("t", "g", [_turn(" green door.", feedback="The green door stays locked.")])
    ctx = build_provider("env_feedback")(
        STUDENT, {}, assistant_prefix="I open the", episode=Episode(traj, 0)
    )
    assert _texts(ctx)[-1][1] == (
        "You hold a red key. Which door?\n\nYour previous attempt: I open the green door.\n"
        "Feedback: The green door stays locked.\nNow answer again."
    )
    with pytest.raises(MissingPrivilegedKey, match="env_feedback.*'feedback'"):
        build_provider("env_feedback")(
            STUDENT, {}, episode=Episode(Trajectory("t", "g", [_turn("x")]), 0)
        )


def test_successful_sibling_is_the_reference_for_failed_ones_only():
    win = Trajectory("a", "g", [_turn(" blue door.")], success=True)
    lose = Trajectory("b", "g", [_turn(" green door.")], success=False)
    lose2 = Trajectory("c", "g", [_turn(" green door.")], success=False)
    provider = build_provider("env_feedback", mode="sibling")
    ctx = provider(STUDENT, {}, episode=Episode(lose, 0, siblings=(win, lose2)))
    assert _texts(ctx)[-1][1].endswith("\n\nA successful answer to this: I open the blue door.")
    # A success gets no reference; nor does a group without success.
    assert _texts(provider(STUDENT, {}, episode=Episode(win, 0, siblings=(lose,)))) == _texts_of(
        STUDENT
    )
    assert _texts(provider(STUDENT, {}, episode=Episode(lose, 0, siblings=(lose2,)))) == _texts_of(
        STUDENT
    )


def test_compose_chain_and_views():
    privileged = {"hint": "open blue.", "solution": "blue"}
    chain = build_provider(
        "compose",
        providers=[
            {"name": "hint", "template": " H: {hint}"},
            {"name": "reference", "kind": "solution", "template": "S: {value}"},
        ],
    )
    assert (
        _texts(chain(STUDENT, privileged))[-1][1]
        == "You hold a red key. Which door? H: open blue.\n\nS: blue"
    )
    views = build_provider(
        "compose",
        mode="views",
        weights=[3, 1],
        providers=[{"name": "hint"}, {"name": "reference", "kind": "solution"}],
    )
    ctx = views(STUDENT, privileged)
    pairs = ctx.all_views()
    assert [w for _, w in pairs] == [0.75, 0.25]
    assert pairs[0][0].messages[-1].text.endswith("Hint: open blue.")
    assert pairs[1][0].messages[-1].text.endswith("Reference solution:\nblue")
    assert views.keys == ["hint", "solution"]
    with pytest.raises(ValueError, match="compose weights must be 2"):
        build_provider(
            "compose", mode="views", weights=[1], providers=[{"name": "hint"}, {"name": "hint"}]
        )


def test_third_party_providers_load_from_the_entry_point_group(monkeypatch):
    from mmopsd.privileged import Provider

    class Shout(Provider):
        name = "shout"

        def __call__(self, messages, privileged, *, assistant_prefix="", episode=None):
            from mmopsd.types import TeacherContext

            return TeacherContext(
                [*messages, user(privileged["hint"].upper())], assistant_prefix, "shout"
            )

    class Entry:
        name = "shout"

        def load(self):
            return Shout

    from mmopsd.privileged import base

    monkeypatch.setattr(
        base.metadata,
        "entry_points",
        lambda group: [Entry()] if group == "mmopsd.providers" else [],
    )
    ctx = build_provider("shout")(STUDENT, {"hint": "blue"})
    assert ctx.messages[-1].text == "BLUE"
    PROVIDERS._items.pop("shout", None)


def test_leak_guard_catches_text_and_images_but_not_the_students_own_words():
    hint = "open the blue door."
    check_no_leak([*STUDENT, generated("I ", "open the blue door.", [1])], {"hint": hint})
    with pytest.raises(PrivilegedLeak, match="info\\['privileged'\\]\\['hint'\\]"):
        check_no_leak([user("You hold a key. open the blue door.")], {"hint": hint})
    crop = Image.new("RGB", (8, 8), "red")
    with pytest.raises(PrivilegedLeak, match="privileged image"):
        check_no_leak([user("Look:", crop.copy())], {"boxes": [{"crop": crop}]})
    check_no_leak([user("Look:", Image.new("RGB", (8, 8), "blue"))], {"boxes": [{"crop": crop}]})
    check_no_leak([user("blue")], {"answer": "blue"})  # short public words are not checked


class LeakyHint(Provider):
    """A broken provider: writes the hint into the student's own message object."""

    name = "leaky"
    keys = ("hint",)

    def __call__(self, messages, privileged, *, assistant_prefix="", episode=None):
        from mmopsd.types import TeacherContext

        messages[-1].content = messages[-1].text + " Hint: " + privileged["hint"]
        return TeacherContext(list(messages), assistant_prefix, self.name)


def test_a_provider_that_leaks_into_the_student_context_raises_in_training(tmp_path):
    from mmopsd.testing import tiny_text_policy
    from mmopsd.training import loop as trainer

    PROVIDERS.add("leaky", LeakyHint)
    try:
        config = from_dict(
            {
                "model": {"name": "tiny"},
                "tasks": [{"env": "mmopsd/KeyDoor-v0", "provider": "leaky"}],
                "rollout": {"max_new_tokens": 2},
                "optimizer": {"steps": 1, "batch_size": 2, "micro_batch_size": 2},
                "evaluation": {"teacher": False, "episodes": 2},
                "run": {"out_dir": str(tmp_path / "run")},
            }
        )
        with pytest.raises(PrivilegedLeak, match="info\\['privileged'\\]\\['hint'\\]"):
            trainer.train(config, policy=tiny_text_policy(), progress=False)
    finally:
        PROVIDERS._items.pop("leaky", None)


def test_an_observation_that_leaks_is_caught_before_generation():
    from mmopsd.agents.prompting import PromptSpec
    from mmopsd.envs.keydoor import KeyDoorEnv

    from mmopsd.rollout import Sampling, rollout
    from mmopsd.testing import tiny_text_policy

    class Blabbing(KeyDoorEnv):
        def describe(self):
            return super().describe() + " (" + self.privileged()["hint"] + ")"

    with pytest.raises(PrivilegedLeak, match="hint"):
        rollout(
            tiny_text_policy(),
            [Blabbing()],
            [0],
            PromptSpec(),
            Sampling(max_new_tokens=2),
            leak_keys=["hint"],
        )


def _episode(task, actions, success, feedback):
    turns = [
        Turn([user(task)], Encoded([1]), [5], action=a, info={"outcome": {"feedback": feedback}})
        for a in actions
    ]
    return Trajectory(task[:8], "g", turns, success)


def test_skill_summary_writes_retrieves_and_saves_skills(tmp_path):
    seen_prompts = []

    def backend(prompts):
        seen_prompts.extend(prompts)
        return [f"skill {len(seen_prompts) - len(prompts) + i}" for i in range(len(prompts))]

    provider = build_provider("skill_summary", k=1, every=2, per_refresh=2)
    provider.summariser = backend
    provider.bind(policy=None, out_dir=tmp_path)
    red = _episode("You hold a red key. Which door?", ["open blue"], True, "The blue door opens.")
    cup = _episode("Put a cup in the sink.", ["go to sink 1"], False, "Nothing happens.")
    provider.observe([red, cup], step=1)
    assert provider.skills == [] and seen_prompts == []  # not yet: every=2
    assert _texts(provider(STUDENT, {})) == _texts_of(STUDENT)  # no skills, no change
    provider.observe([], step=2)
    assert seen_prompts[0] == (
        "Here is one attempt at a task.\nTask: You hold a red key. Which door?\n"
        "What was done: open blue\nResult: success (The blue door opens.)\n"
        "Write one short general rule, in one sentence, that would help with similar tasks."
    )
    assert "Result: failure (Nothing happens.)" in seen_prompts[1]
    ctx = provider([user("You hold a green key. Which door?")], {})
    assert ctx.messages[-1].text.endswith("\n\nSkills learned from earlier attempts:\n- skill 0")
    ctx = provider([user("Put a cup in the fridge.")], {})
    assert ctx.messages[-1].text.endswith("- skill 1")
    saved = json.loads((tmp_path / "skills.json").read_text())
    assert [s["text"] for s in saved] == ["skill 0", "skill 1"]
    assert "| 2 | success | skill 0 |" in (tmp_path / "skills.md").read_text()
    again = build_provider("skill_summary")
    again.bind(policy=None, out_dir=tmp_path)  # a resumed run reloads its library
    assert [s.text for s in again.skills] == ["skill 0", "skill 1"]


def test_skill_summary_trains_with_the_policy_as_summariser(tmp_path):
    from mmopsd.testing import tiny_text_policy
    from mmopsd.training import loop as trainer

    config = from_dict(
        {
            "model": {"name": "tiny"},
            "tasks": [
                {
                    "env": "mmopsd/KeyDoor-v0",
                    "provider": "skill_summary",
                    "provider_kwargs": {"every": 1, "max_new_tokens": 6},
                }
            ],
            "rollout": {"max_new_tokens": 2},
            "optimizer": {"steps": 2, "batch_size": 2, "micro_batch_size": 2},
            "evaluation": {"every": 0, "episodes": 2, "teacher": False},
            "run": {"save_every": 0, "out_dir": str(tmp_path / "run")},
        }
    )
    trainer.train(config, policy=tiny_text_policy(), progress=False)
    skills = json.loads((tmp_path / "run" / "skills.json").read_text())
    texts = [s["text"] for s in skills]
    assert 1 <= len(skills) <= 4 and len(set(texts)) == len(texts)  # duplicates are dropped
    assert {s["step"] for s in skills} <= {1, 2}


def _picture(w=40, h=30):
    img = Image.new("RGB", (w, h), "white")
    img.putpixel((10, 10), (255, 0, 0))
    return img


def test_image_crop_adds_padded_upscaled_crops_beside_the_image():
    from mmopsd.privileged.image_crop import crop_box

    img = _picture()
    student = [user(img, "What is red?")]
    ctx = build_provider("image_crop", padding=0.5, upscale=2.0)(
        student, {"boxes": [[8, 8, 12, 12]]}
    )
    parts = ctx.messages[-1].parts
    assert [type(p).__name__ for p in parts] == ["ImagePart", "TextPart", "TextPart", "ImagePart"]
    assert parts[2].text == "\nZoomed view of the evidence:"
    crop = parts[3].image
    assert crop.size == (16, 16)  # [6, 6, 14, 14] (half a box of padding per side), doubled
    assert (
        crop.tobytes()
        == img.crop((6, 6, 14, 14)).resize((16, 16), Image.Resampling.BICUBIC).tobytes()
    )
    assert crop_box(img, [0, 0, 100, 100], padding=0).size == (80, 60)  # clipped to the image
    assert student[0].images == [img]  # the student's context is untouched


def test_image_crop_replace_handles_several_boxes_and_images():
    a, b = _picture(), _picture(20, 20)
    student = [user(a, "first"), user(b, "second")]
    boxes = [
        [0, 0, 10, 10],
        {"box": [5, 5, 15, 15], "image": 1},
        {"box": [10, 10, 20, 20], "image": 1},
    ]
    ctx = build_provider("image_crop", mode="replace", padding=0, upscale=1)(
        student, {"boxes": boxes}
    )
    assert [im.size for im in ctx.messages[0].images] == [(10, 10)]
    assert [im.size for im in ctx.messages[1].images] == [(10, 10), (10, 10)]
    assert ctx.messages[1].text == "second"
    with pytest.raises(
        MissingPrivilegedKey,
        match="provider 'image_crop' needs info\\['privileged'\\]\\['boxes'\\]",
    ):
        build_provider("image_crop")(student, {})
    with pytest.raises(ValueError, match="refers to image 5"):
        build_provider("image_crop")(student, {"boxes": [{"box": [0, 0, 4, 4], "image": 5}]})


def test_future_frames_adds_the_next_k_frames():
    import numpy as np

    frames = [np.full((6, 6, 3), i * 40, dtype=np.uint8) for i in range(3)]
    ctx = build_provider("future_frames", k=2)(STUDENT, {"future_frames": frames})
    last = ctx.messages[-1]
    assert last.text == "You hold a red key. Which door?\nThe next frames if you act well:"
    assert [np.asarray(im)[0, 0, 0] for im in last.images] == [0, 40]
    with pytest.raises(
        MissingPrivilegedKey,
        match="provider 'future_frames' needs info\\['privileged'\\]\\['future_frames'\\]",
    ):
        build_provider("future_frames")(STUDENT, {"plan": []})


def test_a_fresh_run_starts_an_empty_skill_library(tmp_path):
    (tmp_path / "skills.json").write_text(
        json.dumps([{"text": "old", "task": "t", "success": True, "step": 1}])
    )
    provider = build_provider("skill_summary")
    provider.bind(policy=None, out_dir=tmp_path)
    assert [s.text for s in provider.skills] == ["old"]  # what a resumed run sees
    provider.reset()
    assert provider.skills == [] and not (tmp_path / "skills.json").exists()


def test_an_echo_of_the_students_earlier_answer_is_not_a_leak_of_a_later_rooms_hint():
    """Multi-room KeyDoor: an invalid answer naming a colour that is no door of room 1 is
    echoed back; when room 2's answer is that colour, the echo holds room 2's hint text."""
    import gymnasium as gym
    import mmopsd.envs  # noqa: F401  (registers the environments)

    env = gym.make("mmopsd/KeyDoor-v0", n_doors=2, n_rooms=3)
    for seed in range(200):
        start, info = env.reset(seed=seed)
        first = info["privileged"]["answer"]
        rooms = env.unwrapped.rooms
        later = rooms[1].answer
        if later not in rooms[0].doors:
            break
    else:
        pytest.skip("no seed whose room-2 answer is absent from room 1")
    said = generated("I open the", f" {later} door.", [1])
    echo, _, _, _, _ = env.step(said.text)
    assert f"open the {later} door." in echo  # the environment repeats the student's words
    right = generated("I open the", f" {first} door.", [2])
    obs, _, _, _, info = env.step(right.text)
    assert info["privileged"]["hint"] == f"open the {later} door."
    context = [user(start), said, user(echo), right, user(obs)]
    check_no_leak(context, info["privileged"])  # the student said it first: no leak
    with pytest.raises(PrivilegedLeak):  # without the student's words it would be one
        check_no_leak([user(echo), user(obs)], info["privileged"])
