"""``reference``: an expert plan, next expert action, reference solution or demonstration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmopsd.privileged.base import PROVIDERS, Episode, ReadsOneKey, append_to_last_user, require

from mmopsd.types import Message, TeacherContext

KINDS = {
    "expert_plan": "Expert plan from here: {value}",
    "next_action": "The expert's next action: {value}",
    "solution": "Reference solution:\n{value}",
    "demonstration": "A demonstration of the task:\n{value}",
}


@PROVIDERS.register("reference")
class ReferenceProvider(ReadsOneKey):
    """Shows the teacher reference text from ``info["privileged"]``.

    Args:
        kind: ``expert_plan``, ``next_action``, ``solution`` or ``demonstration`` (picks the
            default key and wording).
        key: the privileged field to read (default: ``kind``).
        template: the wording; ``{value}`` is replaced (lists are joined with ``", then "``).
        place: ``user`` (end of the last user turn, best for small models) or ``system``
            (a system message before the conversation).
    """

    name = "reference"

    def __init__(
        self,
        kind: str = "solution",
        key: str | None = None,
        template: str | None = None,
        place: str = "user",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"reference kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if place not in ("user", "system"):
            raise ValueError(f"reference place must be 'user' or 'system', got {place!r}")
        self.kind = kind
        self.key = key or kind
        self.template = template or KINDS[kind]
        self.place = place

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages plus the reference text."""
        value = require(privileged, self.key, self.name)
        if isinstance(value, list | tuple):
            value = ", then ".join(str(v) for v in value)
        text = self.template.format(value=value)
        if self.place == "user":
            out = append_to_last_user(messages, "\n\n" + text)
        else:
            out = [Message("system", text), *messages]
        return TeacherContext(messages=out, assistant_prefix=assistant_prefix, provider=self.name)
