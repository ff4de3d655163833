"""MiniWoB++ privileged information in words that names no action: the element to act on and
the expert's remaining plan as subgoals, each element told by its kind, its text and where it
sits on the page, never by its number or as a call. A teacher told this still has to find the
element in the page's list and write the action itself (GUI-SD: mark the region, not the
coordinates); it is the answer only where the words are the whole action."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

SCREEN = (160, 210)  # MiniWoB++'s screenshot, width x height
KINDS = {"input_text": "text field", "input_password": "password field", "button": "button",
         "a": "link", "input_checkbox": "checkbox", "input_radio": "option",
         "textarea": "text area", "select": "list", "input_date": "date field",
         "span": "text", "div": "area", "label": "label", "li": "list item", "h3": "heading",
         "td": "cell"}  # fmt: skip
CALL = re.compile(r"^\s*(\w+)\((.*)\)\s*$", re.DOTALL)


def element_words(element: dict[str, Any]) -> str:
    """``the button "Submit" at the bottom left``: kind, text (at most 40 characters) and
    region of a page element."""
    tag = str(element.get("tag", "element"))
    kind = KINDS.get(tag, tag.replace("_", " "))
    text = " ".join(str(element.get("text") or "").split())
    said = f' "{text[:40]}"' if text else ""
    return f"the {kind}{said} {region(element)}"


def region(element: dict[str, Any]) -> str:
    """Where the element's centre lies on a 3 x 3 grid of the page."""
    left, top = float(np.ravel(element["left"])[0]), float(np.ravel(element["top"])[0])
    w, h = float(np.ravel(element["width"])[0]), float(np.ravel(element["height"])[0])
    x, y = (left + w / 2) / SCREEN[0], (top + h / 2) / SCREEN[1]
    row = ("top", "middle", "bottom")[min(2, int(y * 3))]
    column = ("left", "centre", "right")[min(2, int(x * 3))]
    return "in the centre of the page" if (row, column) == ("middle", "centre") else (
        f"at the {row} {column} of the page"
    )  # fmt: skip


def step_words(action: str, element: dict[str, Any] | None) -> str:
    """One expert action as a subgoal: what to act on, not how to write it."""
    found = CALL.match(action)
    verb = found.group(1).lower() if found else ""
    if verb.startswith("click") and element is not None:
        return f"click {element_words(element)}"
    if verb == "type":
        return "type the text the task asks for"
    if verb == "press":
        return "submit with the Enter key" if "enter" in action.lower() else "press the key needed"
    return "act on the page"


def plan_words(plan: Sequence[str], elements: Sequence[dict[str, Any] | None]) -> list[str]:
    """The expert's remaining plan as subgoals (``elements``: each step's clicked element,
    None for a step that clicks nothing)."""
    return [step_words(a, e) for a, e in zip(plan, elements)]
