"""Prompts: how observations become the agent's messages, and how a response becomes an
action. Each environment's own prompt is declared where the environment is registered
(:func:`mmopsd.envs.registration.register`); an environment without one gets the default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mmopsd.agents.history import HistoryWindow
from mmopsd.agents.parsing import PARSERS, ParsedAction
from PIL import Image

from mmopsd.registry import Registry
from mmopsd.types import ImagePart, Message, Part, TextPart


@dataclass(frozen=True)
class PromptSpec:
    """How an agent talks to one environment.

    Attributes:
        system: an optional system message.
        instruction: text placed after the first observation (the task turn).
        followup: text placed after every later observation (default: ``instruction``).
        assistant_prefix: text forced at the start of every answer (part of the prompt for
            both student and teacher); it fixes the action format for small models.
        parser: ``prefix`` (prefix + first line) or ``tag`` (``<action>...</action>``).
        show_admissible: list ``info["admissible_commands"]`` after each observation.
        choose: text placed after that list (when there is one), telling the model to answer
            with one of them.
        history: keep the last ``history`` exchanges after the task (None: all of them).
        text_only: leave images out of observations (set for text-only models, on
            environments whose observations also hold text).
    """

    system: str | None = None
    instruction: str = ""
    followup: str | None = None
    assistant_prefix: str = ""
    parser: str = "prefix"
    show_admissible: bool = False
    choose: str = ""
    history: int | None = None
    text_only: bool = False

    def __post_init__(self) -> None:
        PARSERS.get(self.parser)  # unknown parser names fail here, listing the known ones
        HistoryWindow(self.history)

    @property
    def window(self) -> HistoryWindow:
        """The history window."""
        return HistoryWindow(self.history)

    def messages(self, observation: Any, info: Mapping[str, Any] | None = None) -> list[Message]:
        """The head of the conversation: system message and the first observation."""
        out = [Message("system", self.system)] if self.system else []
        return [*out, self._user(observation, info or {}, self.instruction)]

    def next_message(
        self, observation: Any, info: Mapping[str, Any] | None = None, error: str | None = None
    ) -> Message:
        """The user message of a later observation; ``error`` (why the last answer was not a
        valid action) is stated first."""
        note = f"Invalid answer: {error}.\n" if error else ""
        tail = self.instruction if self.followup is None else self.followup
        return self._user(observation, info or {}, tail, note)

    def parse(self, response_text: str, info: Mapping[str, Any] | None = None) -> ParsedAction:
        """The action in a generated response (``assistant_prefix`` is prepended)."""
        admissible = (info or {}).get("admissible_commands")
        return PARSERS.get(self.parser)()(
            response_text, prefix=self.assistant_prefix, admissible=admissible
        )

    def _user(
        self, observation: Any, info: Mapping[str, Any], tail: str, note: str = ""
    ) -> Message:
        parts = observation_parts(observation)
        if self.text_only:
            parts = [p for p in parts if isinstance(p, TextPart)]
        text = ""
        if self.show_admissible and info.get("admissible_commands"):
            text += "\nAdmissible actions: " + ", ".join(info["admissible_commands"]) + "."
            text += f"\n{self.choose}" if self.choose else ""
        if tail:
            text += "\n" + tail
        if note:
            parts = [TextPart(note), *parts]
        if text:
            parts = [*parts, TextPart(text)]
        if all(isinstance(p, TextPart) for p in parts):
            return Message("user", "".join(p.text for p in parts))  # type: ignore[union-attr]
        return Message("user", parts)


def observation_parts(observation: Any) -> list[Part]:
    """Message parts of an observation: a string, an image, or a dict with ``text`` and
    ``image``/``images`` (PIL images or ``HxWx3`` uint8 arrays)."""
    if isinstance(observation, str):
        return [TextPart(observation)]
    if isinstance(observation, Image.Image | np.ndarray):
        return [ImagePart(_as_image(observation))]
    if isinstance(observation, Mapping):
        images = observation.get("images", [])
        if "image" in observation:
            images = [observation["image"], *images]
        parts: list[Part] = [ImagePart(_as_image(i)) for i in images]
        if observation.get("text"):
            parts.append(TextPart(str(observation["text"])))
        return parts
    raise TypeError(
        f"cannot show an observation of type {type(observation).__name__} to the agent: "
        "return a string, an image, or a dict with 'text' and 'image'"
    )


def observation_images(observation: Any) -> list[Image.Image]:
    """The images of an observation (none for text, or for what the agent cannot be shown)."""
    try:
        return [p.image for p in observation_parts(observation) if isinstance(p, ImagePart)]
    except TypeError:
        return []


def _as_image(x: Any) -> Image.Image:
    if isinstance(x, Image.Image):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype == np.uint8:
        return Image.fromarray(x)
    raise TypeError(
        f"image observations must be PIL images or HxWx3 uint8 arrays, got {type(x).__name__}"
    )


PROMPTS: Registry[PromptSpec] = Registry("prompt spec")
# An environment without a prompt of its own: where it lists its actions (a wrapped
# environment with ``actions=``), the model is shown them and told to pick one; its answer
# starts after "Action:", and a sentence naming exactly one admissible action is that action.
PROMPTS.add(
    "default",
    PromptSpec(
        show_admissible=True,
        choose="Reply with exactly one of these actions.",
        assistant_prefix="Action:",
        parser="mention",
    ),
)


def prompt_for(env_id: str, history: int | None = None) -> PromptSpec:
    """The prompt spec registered for ``env_id``, else for its family (the id up to its first
    ``-``: ``mmopsd/BabyAI`` serves every BabyAI level), else the default one; ``history``
    (when given) replaces its history window (exchanges kept after the task)."""
    key = next((k for k in (env_id, env_id.split("-", 1)[0]) if k in PROMPTS), "default")
    spec = PROMPTS.get(key)
    return spec if history is None else dataclasses.replace(spec, history=history)
