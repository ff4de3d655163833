"""Action parsing: a response becomes an environment action, or a clear reason why not.

Three formats: ``tag`` (the action inside ``<action>...</action>``, the last one wins),
``prefix`` (a forced answer prefix plus the first line of the generated text) and ``mention``
(``prefix``, else the one admissible action a sentence names). When the
environment offers admissible commands, the action is matched against them after
normalisation (case, spacing, trailing punctuation), or as the longest admissible command the
answer starts with; a miss is reported, never raised.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from mmopsd.registry import Registry


@dataclass(frozen=True)
class ParsedAction:
    """The outcome of parsing one response.

    Attributes:
        action: the action to send to the environment: the canonical admissible spelling when
            matched; the unmatched text when it is not admissible (the environment answers
            it); the empty string when the response is malformed, so that no environment
            acts on text that was not meant as an action.
        error: why the response is not a valid action, or None.
    """

    action: str
    error: str | None = None

    @property
    def valid(self) -> bool:
        """True when the response parsed into an admissible action."""
        return self.error is None


def normalise(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation or quotes."""
    return " ".join(text.lower().split()).strip(string.punctuation + " ")


def match_admissible(action: str, admissible: Sequence[str] | None) -> ParsedAction:
    """``action`` spelled as the admissible command it names (exactly, after normalisation, or
    as the longest command it starts with), or an error listing a few."""
    if admissible is None:
        return ParsedAction(action)
    table = {normalise(a): a for a in admissible}
    said = normalise(action)
    hit = table.get(said)
    if hit is None:  # "go to desk 1, then open drawer 1": the longest command said first
        starts = [
            k for k in table if said.startswith(k) and not said[len(k) : len(k) + 1].isalnum()
        ]
        hit = table[max(starts, key=len)] if starts else None
    if hit is not None:
        return ParsedAction(hit)
    shown = ", ".join(list(admissible)[:8]) + (", ..." if len(admissible) > 8 else "")
    return ParsedAction(action, f"'{action}' is not an admissible action (e.g. {shown})")


PARSERS: Registry[type] = Registry("action parser")


@PARSERS.register("tag")
class TagParser:
    """The text inside the last ``<tag>...</tag>`` pair.

    Args:
        tag: the tag name (``action`` by default).
    """

    def __init__(self, tag: str = "action") -> None:
        self.tag = tag
        self._pattern = re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL | re.IGNORECASE)

    def __call__(
        self, text: str, *, prefix: str = "", admissible: Sequence[str] | None = None
    ) -> ParsedAction:
        """Parse ``prefix + text`` (``text`` is the generated part)."""
        full = prefix + text
        found = self._pattern.findall(full)
        if not found:
            return ParsedAction(
                "",
                f"no <{self.tag}>...</{self.tag}> in the answer; put the action inside the tags",
            )
        return match_admissible(found[-1].strip(), admissible)


@PARSERS.register("prefix")
class PrefixParser:
    """The forced answer prefix plus the first line of the generated text. A prefix that ends
    with a colon (``Action:``) is a label, not part of the action; so is any prefix when the
    prefixed line is not admissible but the generated line alone is."""

    def __call__(
        self, text: str, *, prefix: str = "", admissible: Sequence[str] | None = None
    ) -> ParsedAction:
        """Parse ``prefix + text``; an empty action is an error."""
        if prefix.rstrip().endswith(":"):
            prefix = ""
        first = (prefix + text).strip().split("\n", 1)[0].strip()
        if not first:
            return ParsedAction("", "the answer is empty; write one action")
        parsed = match_admissible(first, admissible)
        if not parsed.valid and prefix:  # a label-like prefix ("Next action:") is not the action
            alone = match_admissible(text.strip().split("\n", 1)[0].strip(), admissible)
            if alone.valid:
                return alone
        return parsed


@PARSERS.register("mention")
class MentionParser(PrefixParser):
    """:class:`PrefixParser`, and when its line is not admissible, the one admissible action
    that line names as whole words ("The best action now is right." is ``right``). A line
    naming two or more is invalid, with feedback listing them. The default prompt's parser:
    an environment with no prompt of its own accepts a sentence around its action."""

    def __call__(
        self, text: str, *, prefix: str = "", admissible: Sequence[str] | None = None
    ) -> ParsedAction:
        """Parse ``prefix + text``; see the class."""
        parsed = super().__call__(text, prefix=prefix, admissible=admissible)
        if not admissible or not parsed.action:
            return parsed
        line = parsed.action if not parsed.valid else (prefix + text).strip().split("\n")[0]
        if parsed.valid and normalise(line) == normalise(parsed.action):
            return parsed  # the line is exactly an action
        named = mentioned(line, admissible)
        if len(named) == 1:
            return ParsedAction(named[0])
        if named:
            return ParsedAction(
                line,
                f"the answer names {len(named)} actions ({', '.join(named)}); "
                "reply with exactly one",
            )
        return parsed


def mentioned(text: str, admissible: Sequence[str]) -> list[str]:
    """The admissible commands ``text`` names as whole words, in order of first mention; a
    command inside a longer named one ("drawer 1" in "open drawer 1") does not count."""
    said = " ".join(text.lower().split())
    spans: list[tuple[int, int, str]] = []
    for command in dict.fromkeys(admissible):
        words = normalise(command)
        if not words:
            continue
        pattern = rf"(?<![a-z0-9]){re.escape(words)}(?![a-z0-9])"
        spans += [(m.start(), m.end(), command) for m in re.finditer(pattern, said)]
    kept = [
        s for s in spans
        if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans)
    ]  # fmt: skip
    return list(dict.fromkeys(c for _, _, c in sorted(kept)))
