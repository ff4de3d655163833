"""What a MiniWoB++ expert reads and writes: the page (:class:`Page`: its visible elements, the
task's fields and the episode's actions so far), the element ``click_text`` picks by its words
(:func:`named`), and actions in mmopsd's grammar (``click_element(ref)``,
``click_text("words")``, ``type("text")``, ``press("key")``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Page:
    """What an expert reads: the visible elements, the fields and the episode's actions."""

    elements: list[dict[str, Any]]
    fields: dict[str, str]
    utterance: str = ""
    done: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, obs: dict[str, Any], done: Iterable[str] = ()) -> Page:
        """The page of a miniwob observation."""
        elements = elements_of(obs["dom_elements"])
        fields = {str(k): str(v) for k, v in obs.get("fields", ())}
        return cls(elements, fields, str(obs.get("utterance", "")), list(done))

    def find(self, text: str | None = None, tag: str | None = None, **attrs: str) -> list[dict]:
        """Elements with this exact text (case and outer spaces ignored), tag and attributes
        (``id``, or ``cls`` for one of the classes), in page order."""
        out = []
        for e in self.elements:
            if text is not None and e["text"].strip().lower() != text.strip().lower():
                continue
            if tag is not None and e["tag"] != tag:
                continue
            if "id" in attrs and e["id"] != attrs["id"]:
                continue
            if "cls" in attrs and attrs["cls"] not in e["classes"].split():
                continue
            out.append(e)
        return out

    def one(self, text: str | None = None, tag: str | None = None, **attrs: str) -> dict | None:
        """The first of :meth:`find`, or None."""
        found = self.find(text, tag, **attrs)
        return found[0] if found else None

    def children(self, e: dict[str, Any]) -> list[dict[str, Any]]:
        """The elements whose parent is ``e``."""
        return [c for c in self.elements if c["parent"] == e["ref"]]

    def parent(self, e: dict[str, Any]) -> dict[str, Any] | None:
        """``e``'s parent element."""
        return next((p for p in self.elements if p["ref"] == e["parent"]), None)

    def label_of(self, e: dict[str, Any]) -> str:
        """The words next to an input inside its ``<label>`` (``<label><input>word</label>``)."""
        label = self.parent(e)
        if label is None:
            return ""
        return " ".join(c["text"] for c in self.children(label) if c["tag"] == "t").strip()

    def click_by_text(self, e: dict[str, Any]) -> str:
        """Click ``e`` by its text where ``click_text`` of that text picks ``e``
        (:func:`named`), else by its number."""
        text = e["text"].strip()
        return click_text(text) if text and named(self.elements, text) is e else click(e)

    def clicked(self, e: dict[str, Any]) -> bool:
        """Whether ``e`` was clicked this episode."""
        return click(e) in self.done

    def button(self, text: str = "submit") -> dict | None:
        """The visible button with this text (any case)."""
        return self.one(text, "button")


def _element(raw: dict[str, Any]) -> dict[str, Any]:
    left, top = float(np.ravel(raw["left"])[0]), float(np.ravel(raw["top"])[0])
    w, h = float(np.ravel(raw["width"])[0]), float(np.ravel(raw["height"])[0])
    flags = np.ravel(raw.get("flags", [0, 0, 0, 1]))
    return {
        "ref": int(raw["ref"]),
        "parent": int(raw.get("parent", 0)),
        "tag": str(raw["tag"]).lower(),
        "text": str(raw.get("text", "")),
        "value": str(raw.get("value", "")),
        "id": str(raw.get("id", "")),
        "classes": str(raw.get("classes", "")),
        "box": (left, top, left + w, top + h),
        "focused": bool(flags[0]),
        "leaf": bool(flags[-1]),
    }


def elements_of(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The elements of a miniwob observation's ``dom_elements``, as experts read them."""
    return [_element(e) for e in raw]


def named(elements: list[dict[str, Any]], text: str) -> dict[str, Any] | None:
    """The element ``click_text(text)`` clicks: a visible element (a box of some size) whose
    text is ``text`` (outer spaces ignored; the same case first, else any case); among several,
    an element before a bare text node, a leaf before a container, then the first on the page.
    None when no element has that text."""
    want = text.strip()
    shown = [e for e in elements if e["box"][2] > e["box"][0] and e["box"][3] > e["box"][1]]
    for same in (str.__eq__, lambda a, b: a.casefold() == b.casefold()):
        hits = [e for e in shown if want and same(e["text"].strip(), want)]
        if hits:
            return min(hits, key=lambda e: (e["tag"] == "t", not e["leaf"]))
    return None


# ------------------------------------------------------------------------------ actions
def click(e: dict[str, Any]) -> str:
    """Click element ``e``."""
    return f"click_element({e['ref']})"


def _quoted(text: str) -> str:
    """``text`` in quotes: ``'`` if it holds ``"``, else ``"``."""
    quote = "'" if '"' in text else '"'
    return f"{quote}{text}{quote}"


def click_text(text: str) -> str:
    """Click the element whose text is ``text``."""
    return f"click_text({_quoted(text)})"


def typed(text: str) -> str:
    """Type ``text`` into the focused element."""
    return f"type({_quoted(text)})"


def fill(page: Page, e: dict[str, Any], text: str) -> list[str]:
    """Make text field ``e`` hold ``text``: nothing if it does; else focus it, select what is
    there (typing replaces a selection) and type."""
    if e["value"] == text:
        return []
    out = [] if e["focused"] else [click(e)]
    selected = e["focused"] and page.done[-1:] == [SELECT_ALL]
    if e["value"] and not selected:
        out.append(SELECT_ALL)
    return [*out, typed(text)]


SELECT_ALL = 'press("C-a")'


def checked(e: dict[str, Any]) -> bool:
    """Whether a checkbox or radio button is checked."""
    return e["value"] == "True"


def submit(page: Page, text: str = "submit") -> list[str]:
    """Click the submit button (by its text), or nothing when none is visible."""
    b = page.button(text)
    return [click(b)] if b is not None else []
