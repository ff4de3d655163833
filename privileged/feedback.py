"""``env_feedback``: feedback on the student's attempt, from the environment or a sibling.

Two forms:

- ``info`` (default): the feedback the environment gave on this turn's attempt (an error
  message, a judge's critique, an outcome hint; read from ``info["outcome"]`` of the turn or
  from ``info["privileged"]``) is shown after the student's own attempt, and the teacher
  answers again (SDPO-style re-attempt).
- ``sibling``: a successful rollout of the same group (same task and seed) serves as the
  reference for the failed ones; its response at the same turn is shown. A lone success, or a
  group without success, gets no reference: the teacher context is then the student's own
  (zero distillation signal), never an invented one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmopsd.privileged.base import (
    PROVIDERS,
    Episode,
    MissingPrivilegedKey,
    Provider,
    append_to_last_user,
)

from mmopsd.types import Message, TeacherContext


@PROVIDERS.register("env_feedback")
class FeedbackProvider(Provider):
    """Feedback placed on the student's attempt.

    Args:
        mode: ``info`` or ``sibling``.
        key: the feedback field (``info`` mode), looked up in the turn's outcome and then in
            ``info["privileged"]``.
        template: wording; ``{attempt}`` and ``{feedback}`` (``info``) or ``{reference}``
            (``sibling``) are replaced.
    """

    name = "env_feedback"
    keys: tuple[str, ...] = ()  # feedback on an attempt is not secret from the student

    def __init__(self, mode: str = "info", key: str = "feedback", template: str | None = None):
        if mode not in ("info", "sibling"):
            raise ValueError(f"env_feedback mode must be 'info' or 'sibling', got {mode!r}")
        self.mode = mode
        self.key = key
        self.template = template or (
            "\n\nYour previous attempt: {attempt}\nFeedback: {feedback}\nNow answer again."
            if mode == "info"
            else "\n\nA successful answer to this: {reference}"
        )

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages plus the feedback (or the sibling's answer)."""
        turn = episode.turn if episode is not None else None
        if self.mode == "sibling":
            reference = _sibling_answer(episode)
            out = list(messages)
            if reference is not None:
                out = append_to_last_user(messages, self.template.format(reference=reference))
            return TeacherContext(out, assistant_prefix, self.name)
        outcome = turn.info.get("outcome", {}) if turn is not None else {}
        feedback = outcome.get(self.key, privileged.get(self.key))
        if feedback is None:
            have = sorted({*outcome, *privileged}) or ["nothing"]
            raise MissingPrivilegedKey(
                f"provider 'env_feedback' needs {self.key!r} in the turn's outcome info or "
                f"info['privileged'], but the environment supplied {', '.join(have)}; return "
                "feedback from step() or use mode='sibling'"
            )
        attempt = (assistant_prefix + turn.response_text).strip() if turn is not None else ""
        text = self.template.format(attempt=attempt, feedback=feedback)
        return TeacherContext(append_to_last_user(messages, text), assistant_prefix, self.name)


def _sibling_answer(episode: Episode | None) -> str | None:
    """The response of a successful sibling at the same turn, when this rollout failed."""
    if episode is None or episode.trajectory is None or episode.trajectory.success:
        return None
    for sibling in episode.siblings:
        usable = sibling.success and sibling is not episode.trajectory
        if usable and episode.turn_index < len(sibling.turns):
            turn = sibling.turns[episode.turn_index]
            return (turn.assistant_prefix + turn.response_text).strip()
    return None
