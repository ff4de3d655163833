"""Synthetic GUI environments: ``mmopsd/GUIClick-v0`` (one grounded click) and
``mmopsd/GUIForm-v0`` (fill in a form over several steps).

Screens are drawn with Pillow (buttons, text fields, checkboxes, drop-down menus, small icons;
three themes; layouts drawn from a seed). Actions: ``click(x, y)`` in screenshot pixels,
``type("text")`` into the focused field, ``select("option")`` in the open menu. Privileged
information: the target element's box (``target_box``, also as ``boxes`` for ``image_crop``),
the accessibility tree of the screen (``a11y``) and, for forms, the expert plan.
``info["grounded"]`` says whether a click landed inside the target element (ScreenSpot's
metric).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mmopsd.envs.base import AgentEnv, Outcome, quote
from mmopsd.envs.drawing import as_array, image_text_space
from mmopsd.envs.gui_screen import (
    APPS,
    BUTTONS,
    CHECKS,
    FIELDS,
    ICONS,
    MENUS,
    THEMES,
    Screen,
    Widget,
    centre,
    parse_gui_action,
)
from mmopsd.envs.seeds import check_split

VALUES = ("Ada", "Paris", "Lima", "Kofi", "Mira", "Oslo", "Chen", "Rome")


class _GUIEnv(AgentEnv):
    """Shared screen handling."""

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self, width: int, height: int, split: str, max_steps: int, render_mode: str | None
    ) -> None:
        super().__init__(max_steps=max_steps)
        check_split(split, "GUI split")
        self.width, self.height, self.split = width, height, split
        self.render_mode = render_mode
        self.observation_space = image_text_space(height, width)
        self.screen: Screen | None = None
        self.task = ""

    def canonical(self, action: str) -> str | None:
        """A well-formed ``click``/``type``/``select`` call (a click inside the screen), else
        None."""
        parsed = parse_gui_action(action)
        if parsed is None:
            return None
        verb, args = parsed
        if verb == "click" and not (0 <= args[0] < self.width and 0 <= args[1] < self.height):
            return None
        return action.strip().split("\n")[0]

    def invalid_observation(self, action: str) -> dict[str, Any]:
        """The screen again with the action syntax."""
        syntax = 'click(x, y), type("text") or select("option")'
        note = f"'{quote(action, 40)}' is not an action: use {syntax}."
        return self._observation(note)

    def render(self) -> np.ndarray | None:
        """The screenshot (``rgb_array`` mode)."""
        return (
            as_array(self.screen.render())
            if self.render_mode == "rgb_array" and self.screen
            else None
        )

    def _observation(self, note: str = "") -> dict[str, Any]:
        text = (note + "\n" if note else "") + f"Task: {self.task}"
        return {"text": text, "image": as_array(self.screen.render())}

    def _layout(self, widgets: list[tuple[str, str, tuple]]) -> Screen:
        """Place widgets at random, never overlapping (a menu's drop-down space included);
        menus and wide elements go first, and a crowded attempt starts over."""
        rng = self.np_random
        screen = Screen(
            str(rng.choice(APPS)), str(rng.choice(list(THEMES))), self.width, self.height
        )
        order = sorted(widgets, key=lambda w: -(len(w[2]) * 1000 + SIZES[w[0]](w[1])[0]))
        for _ in range(50):
            placed = self._place(order)
            if placed is not None:
                screen.widgets = placed
                return screen
        raise ValueError(
            f"a {self.width}x{self.height} screen is too small for {len(widgets)} elements; "
            "use a larger screen (640x480 holds every layout)"
        )

    def _place(self, widgets: list[tuple[str, str, tuple]]) -> list[Widget] | None:
        rng = self.np_random
        taken: list[tuple[int, int, int, int]] = []
        out = []
        for role, name, options in widgets:
            w, h = SIZES[role](name)
            below = 26 * len(options)  # room for the open menu
            for _ in range(100):
                x = int(rng.integers(12, max(13, self.width - w - 12)))
                y = int(rng.integers(62, max(63, self.height - h - below - 8)))
                box = (x - 6, y - 22, x + w + 6, y + h + below + 6)  # label above, margin
                if all(_apart(box, t) for t in taken):
                    break
            else:
                return None
            taken.append(box)
            out.append(Widget(role, name, (x, y, x + w, y + h), options=options))
        return out


SIZES = {
    "button": lambda name: (len(name) * 10 + 24, 34),
    "textbox": lambda name: (160, 30),
    "checkbox": lambda name: (len(name) * 9 + 34, 22),
    "combobox": lambda name: (150, 30),
    "icon": lambda name: (30, 30),
}


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


class GUIClickEnv(_GUIEnv):
    """Click the element the task names (one step; success = the click lands on it).

    Args:
        width: screenshot width.
        height: screenshot height.
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        render_mode: ``rgb_array`` or None.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        split: str = "train",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(width, height, split, max_steps=2, render_mode=render_mode)
        self.target: Widget | None = None

    def new_task(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """A screen of 9 or 10 elements and one to click."""
        rng = self.np_random
        widgets: list[tuple[str, str, tuple]] = [
            ("button", str(b), ())
            for b in rng.choice(BUTTONS, int(rng.integers(3, 5)), replace=False)
        ]
        widgets += [("textbox", str(f), ()) for f in rng.choice(FIELDS, 2, replace=False)]
        widgets += [("checkbox", str(c), ()) for c in rng.choice(CHECKS, 1, replace=False)]
        menu = str(rng.choice(list(MENUS)))
        widgets += [("combobox", menu, MENUS[menu])]
        widgets += [("icon", str(i), ()) for i in rng.choice(ICONS, 2, replace=False)]
        self.screen = self._layout(widgets)
        self.target = self.screen.widgets[int(rng.integers(len(self.screen.widgets)))]
        self.task = _describe(self.target)
        return self._observation()

    def apply(self, action: str) -> Outcome:
        """A click ends the episode; other actions do nothing here."""
        verb, args = parse_gui_action(action)  # type: ignore[misc]
        if verb != "click":
            return Outcome(
                self._observation("Only click(x, y) does something here."),
                0.0,
                False,
                False,
                "No effect.",
            )
        hit = self.target.contains(*args)
        feedback = "You clicked the target." if hit else "You missed the target."
        self._grounded = hit
        return Outcome(self._observation(feedback), float(hit), True, hit, feedback)

    def privileged(self) -> dict[str, Any]:
        """The target box and the accessibility tree."""
        if self.target is None:
            return {}
        x, y = centre(self.target.box)
        return {
            "target_box": list(self.target.box),
            "boxes": [list(self.target.box)],
            "a11y": self.screen.tree(),
            "next_action": f"click({x}, {y})",
        }

    def step(self, action: str):
        """Act; ``info["grounded"]`` reports whether a click hit the target."""
        self._grounded = False
        obs, reward, terminated, truncated, info = super().step(action)
        info["grounded"] = self._grounded
        return obs, reward, terminated, truncated, info


class GUIFormEnv(_GUIEnv):
    """Fill in a form and submit it (several steps).

    The task names a value for two text fields, a box to tick and a menu choice; success means
    the form holds exactly those when Submit is clicked.

    Args:
        width: screenshot width.
        height: screenshot height.
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        max_steps: step cap.
        render_mode: ``rgb_array`` or None.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        split: str = "train",
        max_steps: int = 16,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(width, height, split, max_steps=max_steps, render_mode=render_mode)
        self.goal: dict[str, Any] = {}

    def new_task(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """A form: two fields, a checkbox, a menu, Submit and a distractor button."""
        rng = self.np_random
        fields = [str(f) for f in rng.choice(FIELDS, 2, replace=False)]
        check = str(rng.choice(CHECKS))
        menu = str(rng.choice(list(MENUS)))
        widgets: list[tuple[str, str, tuple]] = [("textbox", f, ()) for f in fields]
        widgets += [
            ("checkbox", check, ()),
            ("combobox", menu, MENUS[menu]),
            ("button", "Submit", ()),
            ("button", str(rng.choice(["Cancel", "Help", "Back"])), ()),
        ]
        self.screen = self._layout(widgets)
        self.goal = {f: str(rng.choice(VALUES)) for f in fields}
        self.goal[check] = True
        self.goal[menu] = str(rng.choice(MENUS[menu]))
        parts = [f"{f} = {self.goal[f]}" for f in fields]
        self.task = (
            f"Fill in the form: {', '.join(parts)}; tick '{check}'; "
            f"choose {menu}: {self.goal[menu]}; then click Submit."
        )
        return self._observation()

    def apply(self, action: str) -> Outcome:
        """Click, type or select."""
        verb, args = parse_gui_action(action)  # type: ignore[misc]
        screen = self.screen
        plan = self._plan()
        expected = plan[0] if plan else None
        self._grounded = None
        if verb == "click":
            target = self._target_of(expected)
            self._grounded = bool(target and target.contains(*args))
            widget = self._menu_option(*args) or screen.at(*args)
            return self._click(widget)
        if verb == "type":
            if screen.focused is None or screen.focused.role != "textbox":
                return Outcome(
                    self._observation("Click a text field first."),
                    0.0,
                    False,
                    False,
                    "No field is focused.",
                )
            screen.focused.value = args[0]
            return Outcome(
                self._observation(f"Typed into {screen.focused.name}."), 0.0, False, False, "Typed."
            )
        menu = screen.open_menu
        if menu is None or args[0] not in menu.options:
            return Outcome(
                self._observation("Open the menu and pick one of its options."),
                0.0,
                False,
                False,
                "Nothing selected.",
            )
        menu.value, screen.open_menu = args[0], None
        return Outcome(
            self._observation(f"{menu.name} set to {args[0]}."), 0.0, False, False, "Selected."
        )

    def privileged(self) -> dict[str, Any]:
        """The expert plan, the next target's box and the accessibility tree."""
        if self.screen is None:
            return {}
        plan = self._plan()
        out: dict[str, Any] = {
            "a11y": self.screen.tree(),
            "plan": plan,
            "expert_plan": ", then ".join(plan),
        }
        if plan:
            out["next_action"] = plan[0]
            target = self._target_of(plan[0])
            if target is not None:
                out["target_box"] = list(target.box)
                out["boxes"] = [list(target.box)]
        return out

    def step(self, action: str):
        """Act; ``info["grounded"]`` reports whether a click hit the expert's next target."""
        self._grounded = None
        obs, reward, terminated, truncated, info = super().step(action)
        info["grounded"] = self._grounded
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ helpers
    def _click(self, widget: Widget | None) -> Outcome:
        screen = self.screen
        if isinstance(widget, str):  # an option of the open menu
            menu = screen.open_menu
            menu.value, screen.open_menu = widget, None
            return Outcome(
                self._observation(f"{menu.name} set to {widget}."), 0.0, False, False, "Selected."
            )
        screen.open_menu = None
        if widget is None:
            return Outcome(
                self._observation("Nothing there."), 0.0, False, False, "Clicked nothing."
            )
        screen.focused = widget
        if widget.role == "checkbox":
            widget.value = not widget.value
        elif widget.role == "combobox":
            screen.open_menu = widget
        elif widget.role == "button":
            if widget.name != "Submit":
                return Outcome(
                    self._observation(f"{widget.name} does nothing here."),
                    0.0,
                    False,
                    False,
                    "No effect.",
                )
            won = self._filled()
            text = (
                "The form was submitted correctly."
                if won
                else "The form was submitted with wrong values."
            )
            return Outcome(self._observation(text), float(won), True, won, text)
        return Outcome(self._observation(f"Clicked {widget.name}."), 0.0, False, False, "Clicked.")

    def _menu_option(self, x: float, y: float) -> str | None:
        menu = self.screen.open_menu
        if menu is None:
            return None
        x0, _, x1, y1 = menu.box
        for i, option in enumerate(menu.options):
            if x0 <= x <= x1 and y1 + i * 26 <= y <= y1 + (i + 1) * 26:
                return option
        return None

    def _filled(self) -> bool:
        return all(
            self.screen.find(_role(self.screen, k), k).value == v for k, v in self.goal.items()
        )

    def _plan(self) -> list[str]:
        """The remaining expert actions from the current state."""
        screen, plan = self.screen, []
        for name, want in self.goal.items():
            w = screen.find(_role(screen, name), name)
            if w.value == want:
                continue
            x, y = centre(w.box)
            if w.role == "textbox":
                plan += ([] if screen.focused is w and not plan else [f"click({x}, {y})"]) + [
                    f'type("{want}")'
                ]
            elif w.role == "checkbox":
                plan.append(f"click({x}, {y})")
            else:
                plan += ([] if screen.open_menu is w and not plan else [f"click({x}, {y})"]) + [
                    f'select("{want}")'
                ]
        x, y = centre(screen.find("button", "Submit").box)
        return [*plan, f"click({x}, {y})"]

    def _target_of(self, action: str | None) -> Widget | None:
        parsed = parse_gui_action(action) if action else None
        if parsed is None or parsed[0] != "click":
            return None
        return self.screen.at(*parsed[1])


def _role(screen: Screen, name: str) -> str:
    return next(w.role for w in screen.widgets if w.name == name)


def _describe(w: Widget) -> str:
    return {
        "button": f"Click the '{w.name}' button.",
        "textbox": f"Click the {w.name} text field.",
        "checkbox": f"Click the '{w.name}' checkbox.",
        "combobox": f"Click the {w.name} menu.",
        "icon": f"Click the {w.name} icon.",
    }[w.role]
