"""Relative positions in words, shared by the text of the grid benchmarks."""

from __future__ import annotations


def relative(right: int, ahead: int, ahead_words: tuple[str, str] = ("forward", "back")) -> str:
    """``right`` cells to the right and ``ahead`` cells ahead in words, e.g. "2 steps left
    and 1 step forward" (``ahead_words`` name the positive and negative directions)."""

    def steps(n: int, word: str) -> str:
        return f"{n} step{'s' if n != 1 else ''} {word}"

    parts = []
    if right:
        parts.append(steps(abs(right), "right" if right > 0 else "left"))
    if ahead:
        parts.append(steps(abs(ahead), ahead_words[0] if ahead > 0 else ahead_words[1]))
    return " and ".join(parts) or "here"
