"""``hint``: a privileged sentence appended to the end of the last user turn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmopsd.privileged.base import PROVIDERS, Episode, ReadsOneKey, append_to_last_user, require

from mmopsd.types import Message, TeacherContext


@PROVIDERS.register("hint")
class HintProvider(ReadsOneKey):
    """Appends ``template.format(hint=info['privileged'][key])`` to the last user message.

    Small models copy a hint placed at the end of the user turn far more reliably than one in
    a system prompt.

    Args:
        key: the privileged field holding the hint text.
        template: how the hint is phrased; ``{hint}`` is replaced.
    """

    name = "hint"

    def __init__(self, key: str = "hint", template: str = "\n\nHint: {hint}") -> None:
        self.key = key
        self.template = template

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages with the hint at the end of the last user turn."""
        hint = str(require(privileged, self.key, self.name))
        out = append_to_last_user(messages, self.template.format(hint=hint))
        return TeacherContext(messages=out, assistant_prefix=assistant_prefix, provider=self.name)
