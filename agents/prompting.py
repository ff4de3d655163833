"""Per-environment prompts: how an observation becomes the student's messages, and how a
response becomes an action."""

from __future__ import annotations

from dataclasses import dataclass

from mmopsd.registry import Registry
from mmopsd.types import Message


@dataclass(frozen=True)
class PromptSpec:
    """How an agent talks to one environment.

    Attributes:
        system: an optional system message.
        instruction: text placed after the observation in the user turn.
        assistant_prefix: text forced at the start of the answer (part of the prompt for
            both student and teacher); it fixes the action format for small models.
    """

    system: str | None = None
    instruction: str = ""
    assistant_prefix: str = ""

    def messages(self, observation: str) -> list[Message]:
        """The student's messages for one observation."""
        out = [Message("system", self.system)] if self.system else []
        text = observation + (f"\n{self.instruction}" if self.instruction else "")
        return [*out, Message("user", text)]

    def action(self, response_text: str) -> str:
        """The environment action: the forced prefix plus the generated text."""
        return (self.assistant_prefix + response_text).strip()


PROMPTS: Registry[PromptSpec] = Registry("prompt spec")
PROMPTS.add("default", PromptSpec())
PROMPTS.add("mmopsd/KeyDoor-v0", PromptSpec(assistant_prefix="I open the"))


def prompt_for(env_id: str) -> PromptSpec:
    """The prompt spec registered for ``env_id``, else the default one."""
    return PROMPTS.get(env_id) if env_id in PROMPTS else PROMPTS.get("default")
