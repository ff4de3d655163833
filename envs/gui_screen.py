"""Synthetic application screens drawn with Pillow: widgets, layouts, themes, accessibility
trees. Shared by ``mmopsd/GUIClick-v0`` and ``mmopsd/GUIForm-v0``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mmopsd.envs.drawing import font
from PIL import Image, ImageDraw

THEMES = {
    "light": {
        "bg": (246, 246, 248),
        "panel": (255, 255, 255),
        "fg": (30, 30, 35),
        "accent": (38, 110, 210),
        "line": (170, 170, 180),
    },
    "dark": {
        "bg": (32, 34, 40),
        "panel": (48, 50, 58),
        "fg": (230, 230, 235),
        "accent": (90, 160, 250),
        "line": (110, 112, 122),
    },
    "warm": {
        "bg": (250, 243, 232),
        "panel": (255, 251, 244),
        "fg": (60, 40, 30),
        "accent": (200, 90, 40),
        "line": (190, 170, 150),
    },
}
BUTTONS = ("Save", "Cancel", "Open", "Delete", "Share", "Print", "Export", "Help", "Next", "Back")
FIELDS = ("Name", "Email", "City", "Phone", "Title", "Company")
CHECKS = ("Remember me", "Subscribe", "Accept terms", "Dark mode", "Notifications")
MENUS = {
    "Country": ("France", "Japan", "Brazil", "Kenya"),
    "Size": ("Small", "Medium", "Large"),
    "Colour": ("Red", "Green", "Blue"),
}
ICONS = ("search", "settings", "home", "star")
APPS = ("Notes", "Mail", "Photos", "Tasks", "Billing")

Box = tuple[int, int, int, int]


@dataclass
class Widget:
    """One element on the screen.

    Attributes:
        role: ``button``, ``textbox``, ``checkbox``, ``combobox`` or ``icon``.
        name: its label.
        box: ``(x0, y0, x1, y1)`` in pixels.
        value: text typed (textbox), ``True``/``False`` (checkbox), choice (combobox).
        options: choices of a combobox.
    """

    role: str
    name: str
    box: Box
    value: Any = None
    options: tuple[str, ...] = ()

    def contains(self, x: float, y: float) -> bool:
        """True when the point lies inside the widget."""
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1

    def node(self) -> dict[str, Any]:
        """The accessibility-tree node."""
        out: dict[str, Any] = {"role": self.role, "name": self.name, "box": list(self.box)}
        if self.value is not None:
            out["value"] = self.value
        if self.options:
            out["options"] = list(self.options)
        return out


@dataclass
class Screen:
    """A window: title, theme and widgets."""

    title: str
    theme: str
    width: int
    height: int
    widgets: list[Widget] = field(default_factory=list)
    focused: Widget | None = None
    open_menu: Widget | None = None

    def at(self, x: float, y: float) -> Widget | None:
        """The widget under a point."""
        return next((w for w in self.widgets if w.contains(x, y)), None)

    def find(self, role: str, name: str) -> Widget:
        """The widget with this role and name."""
        return next(w for w in self.widgets if w.role == role and w.name == name)

    def tree(self) -> dict[str, Any]:
        """The accessibility tree of the window."""
        return {"role": "window", "name": self.title, "children": [w.node() for w in self.widgets]}

    def render(self) -> Image.Image:
        """Draw the window."""
        th = THEMES[self.theme]
        image = Image.new("RGB", (self.width, self.height), th["bg"])
        d = ImageDraw.Draw(image)
        d.rectangle([0, 0, self.width, 34], fill=th["accent"])
        d.text((12, 8), self.title, fill=(255, 255, 255), font=font(18))
        for w in self.widgets:
            _draw_widget(d, w, th, focused=w is self.focused)
        if self.open_menu is not None:
            x0, _, x1, y1 = self.open_menu.box
            for i, option in enumerate(self.open_menu.options):
                top = y1 + i * 26
                d.rectangle([x0, top, x1, top + 26], fill=th["panel"], outline=th["line"])
                d.text((x0 + 8, top + 5), option, fill=th["fg"], font=font(14))
        return image


def _draw_widget(d: ImageDraw.ImageDraw, w: Widget, th: dict, *, focused: bool) -> None:
    x0, y0, x1, y1 = w.box
    if w.role == "button":
        d.rounded_rectangle(w.box, radius=6, fill=th["accent"])
        d.text((x0 + 10, y0 + 8), w.name, fill=(255, 255, 255), font=font(15))
    elif w.role == "textbox":
        d.text((x0, y0 - 18), w.name, fill=th["fg"], font=font(13))
        outline = th["accent"] if focused else th["line"]
        d.rectangle(w.box, fill=th["panel"], outline=outline, width=2 if focused else 1)
        d.text((x0 + 6, y0 + 7), str(w.value or ""), fill=th["fg"], font=font(14))
    elif w.role == "checkbox":
        d.rectangle([x0, y0, x0 + 20, y0 + 20], fill=th["panel"], outline=th["line"], width=2)
        if w.value:
            d.line([x0 + 4, y0 + 10, x0 + 9, y0 + 16, x0 + 17, y0 + 4], fill=th["accent"], width=3)
        d.text((x0 + 28, y0 + 2), w.name, fill=th["fg"], font=font(14))
    elif w.role == "combobox":
        d.text((x0, y0 - 18), w.name, fill=th["fg"], font=font(13))
        d.rectangle(w.box, fill=th["panel"], outline=th["line"])
        d.text((x0 + 6, y0 + 7), str(w.value or "Choose..."), fill=th["fg"], font=font(14))
        d.polygon([(x1 - 18, y0 + 12), (x1 - 8, y0 + 12), (x1 - 13, y0 + 19)], fill=th["fg"])
    else:  # icon
        cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 2 - 3
        if w.name == "search":
            d.ellipse([cx - r, cy - r, cx + r // 2, cy + r // 2], outline=th["fg"], width=3)
            d.line([cx + r // 3, cy + r // 3, cx + r, cy + r], fill=th["fg"], width=3)
        elif w.name == "settings":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=th["fg"], width=4)
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=th["fg"])
        elif w.name == "home":
            d.polygon([(cx - r, cy), (cx, cy - r), (cx + r, cy)], fill=th["fg"])
            d.rectangle([cx - r + 4, cy, cx + r - 4, cy + r], fill=th["fg"])
        else:
            pts = [
                (
                    cx + r * np.cos(a) * (1 if i % 2 == 0 else 0.45),
                    cy + r * np.sin(a) * (1 if i % 2 == 0 else 0.45),
                )
                for i, a in enumerate(np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1])
            ]
            d.polygon(pts, fill=th["fg"])


ACTION = re.compile(r"^\s*(click|type|select)\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)


def parse_gui_action(text: str) -> tuple[str, tuple] | None:
    """``click(x, y)``, ``type("text")`` or ``select("option")``, or None."""
    found = ACTION.match(text.strip().split("\n")[0])
    if not found:
        return None
    verb, args = found.group(1).lower(), found.group(2).strip()
    if verb == "click":
        nums = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)", args)
        return ("click", (float(nums.group(1)), float(nums.group(2)))) if nums else None
    quoted = re.fullmatch(r"""["'](.*)["']""", args, re.DOTALL)
    return (verb, (quoted.group(1),)) if quoted else None


def centre(box: Box) -> tuple[int, int]:
    """The centre of a box."""
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
