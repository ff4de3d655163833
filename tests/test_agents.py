"""Agents: action parsing, admissible matching, history windows, observation messages."""

from __future__ import annotations

import numpy as np
import pytest
from mmopsd.agents.history import HistoryWindow
from mmopsd.agents.parsing import PrefixParser, TagParser, match_admissible
from mmopsd.agents.prompting import PromptSpec, observation_parts
from PIL import Image

from mmopsd.errors import UnknownNameError
from mmopsd.types import ImagePart, TextPart

ADMISSIBLE = ["go to countertop 1", "take apple 1 from countertop 1", "look"]


def test_tag_parser_takes_the_last_action_and_matches_admissible_spelling():
    parse = TagParser()
    out = parse(
        "I think <action>look</action> no, <action> Go to  Countertop 1. </action>",
        admissible=ADMISSIBLE,
    )
    assert out.valid and out.action == "go to countertop 1"


def test_tag_parser_reports_missing_tags_and_sends_nothing_to_act_on():
    out = TagParser()("go to countertop 1", admissible=ADMISSIBLE)
    assert not out.valid and out.action == "" and "no <action>...</action>" in out.error


def test_inadmissible_action_is_reported_with_examples():
    out = match_admissible("fly away", ADMISSIBLE)
    assert not out.valid and out.action == "fly away"
    assert (
        out.error
        == "'fly away' is not an admissible action (e.g. go to countertop 1, take apple 1 from countertop 1, look)"
    )


def test_prefix_parser_uses_the_prefix_or_treats_it_as_a_label():
    parse = PrefixParser()
    assert parse(" blue door.\nmore", prefix="I open the").action == "I open the blue door."
    out = parse(" take apple 1 from countertop 1\n", prefix="Next action:", admissible=ADMISSIBLE)
    assert out.valid and out.action == "take apple 1 from countertop 1"
    assert not parse("   ", prefix="").valid
    # a prefix ending in a colon is a label even where no admissible list can tell
    assert parse(" click_element(6)\nThe code", prefix="Action:").action == "click_element(6)"


def test_history_window_keeps_the_last_k_exchanges():
    assert HistoryWindow(None).select([1, 2, 3]) == [1, 2, 3]
    assert HistoryWindow(2).select([1, 2, 3]) == [2, 3]
    assert HistoryWindow(2).select([1]) == [1]
    with pytest.raises(ValueError, match="history window k must be >= 1"):
        HistoryWindow(0)


def test_prompt_spec_lists_admissible_actions_and_states_parse_errors():
    spec = PromptSpec(system="Be brief.", instruction="Act.", show_admissible=True)
    head = spec.messages("You see a table.", {"admissible_commands": ["look", "go to table 1"]})
    assert [m.role for m in head] == ["system", "user"]
    assert head[1].text == "You see a table.\nAdmissible actions: look, go to table 1.\nAct."
    nxt = spec.next_message("Nothing happens.", {}, error="no <action> tag")
    assert nxt.text == "Invalid answer: no <action> tag.\nNothing happens.\nAct."
    with pytest.raises(UnknownNameError, match="tag, prefix|prefix, tag"):
        PromptSpec(parser="regex")


def test_observations_with_images_become_image_parts():
    img = np.zeros((4, 5, 3), dtype=np.uint8)
    parts = observation_parts({"text": "Click OK.", "image": img})
    assert isinstance(parts[0], ImagePart) and parts[0].image.size == (5, 4)
    assert parts[1] == TextPart("Click OK.")
    assert isinstance(observation_parts(Image.new("RGB", (2, 2)))[0], ImagePart)
    with pytest.raises(TypeError, match="HxWx3 uint8"):
        observation_parts({"image": np.zeros((4, 4), dtype=np.float32)})
    with pytest.raises(TypeError, match="cannot show an observation of type int"):
        observation_parts(3)


def test_an_answer_starting_with_an_admissible_command_is_that_command():
    out = match_admissible("Go to countertop 1, then look", ADMISSIBLE)
    assert out.valid and out.action == "go to countertop 1"
    assert not match_admissible("go to countertop 12", ADMISSIBLE).valid  # no partial words


def test_the_miniwob_prompt_teaches_the_format_with_nothing_to_copy():
    import re

    from mmopsd.agents.prompting import prompt_for
    from mmopsd.envs import MINIWOB

    for task in MINIWOB:
        spec = prompt_for(f"mmopsd/MiniWoB-{task}-v0")
        text = spec.instruction + (spec.followup or "")
        assert not re.search(r"\d", text)  # no element number or point to answer with
        for verb in ("click_element", "click_text", "click", "type", "press"):
            assert f"{verb}(" in text
        quoted = re.findall(r'"([^"]*)"', text)
        assert all(q.isupper() for q in quoted)  # placeholders, never a value (TEXT, KEY)
