"""Core data types: chat messages with images, turns, trajectories, teacher contexts.

Data flows one way through these types::

    env observation -> Message list (student context) -> Turn (exact token ids)
    -> Trajectory (turns of one episode) -> TeacherContext (student context + privileged info)

A single-turn task is a trajectory of one turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from PIL import Image

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a message."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image inside a message. Only ``PIL.Image.Image`` objects are accepted."""

    image: Image.Image

    def __post_init__(self) -> None:
        if not isinstance(self.image, Image.Image):
            raise TypeError(
                f"ImagePart needs a PIL.Image.Image, got {type(self.image).__name__}; "
                "open files with mmopsd.policies.images.load_image(path) first."
            )


Part = TextPart | ImagePart


@dataclass
class Message:
    """One chat message. ``content`` is a string or a list of text and image parts.

    An assistant message that the policy generated also carries its exact token ids:
    ``prefix`` is the forced text that preceded them in the prompt and ``response_ids`` the
    sampled ids. Encoding a conversation uses these ids as they are, so a history is never
    re-tokenized (``content`` holds ``prefix`` + the decoded text, for display and providers).
    """

    role: Role
    content: str | list[Part]
    prefix: str = ""
    response_ids: list[int] | None = None

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown message role {self.role!r}: use system, user or assistant")
        if self.response_ids is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry generated response ids")
        if not isinstance(self.content, str):
            self.content = list(self.content)
            for part in self.content:
                if not isinstance(part, TextPart | ImagePart):
                    raise TypeError(
                        "message content parts must be text or images (PIL.Image.Image), "
                        f"got {type(part).__name__}"
                    )

    @property
    def parts(self) -> list[Part]:
        """The content as a list of parts (a string becomes one ``TextPart``)."""
        return [TextPart(self.content)] if isinstance(self.content, str) else list(self.content)

    @property
    def text(self) -> str:
        """All text parts joined, images left out."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def images(self) -> list[Image.Image]:
        """The images of this message, in order."""
        return [p.image for p in self.parts if isinstance(p, ImagePart)]

    def to_template(self) -> dict[str, Any]:
        """The Hugging Face chat-template form: plain string, or typed content items."""
        if isinstance(self.content, str):
            return {"role": self.role, "content": self.content}
        items: list[dict[str, Any]] = []
        for p in self.content:
            if isinstance(p, TextPart):
                items.append({"type": "text", "text": p.text})
            else:
                items.append({"type": "image"})
        return {"role": self.role, "content": items}

    @property
    def generated(self) -> bool:
        """True for an assistant message that carries its exact generated ids."""
        return self.response_ids is not None

    def with_text_appended(self, text: str) -> Message:
        """A copy with ``text`` added at the end of the content (generated ids are dropped,
        since the text no longer matches them)."""
        if isinstance(self.content, str):
            return Message(self.role, self.content + text)
        return Message(self.role, [*self.content, TextPart(text)])


def generated(prefix: str, text: str, response_ids: Sequence[int]) -> Message:
    """The assistant message of a generated turn: forced ``prefix``, decoded ``text`` and the
    exact ``response_ids``."""
    return Message("assistant", prefix + text, prefix=prefix, response_ids=list(response_ids))


def user(*parts: str | Image.Image | Part) -> Message:
    """Shorthand for a user message from strings and images."""
    return Message("user", _to_parts(parts))


def system(text: str) -> Message:
    """Shorthand for a system message."""
    return Message("system", text)


def _to_parts(parts: Sequence[str | Image.Image | Part]) -> str | list[Part]:
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    out: list[Part] = []
    for p in parts:
        if isinstance(p, str):
            out.append(TextPart(p))
        elif isinstance(p, Image.Image):
            out.append(ImagePart(p))
        else:
            out.append(p)
    return out


@dataclass
class Encoded:
    """A prompt ready for the model.

    Attributes:
        ids: exact prompt token ids (with image placeholders expanded for VLMs).
        mm: multimodal tensors for this prompt (``pixel_values`` ``[patches, D]``,
            ``image_grid_thw`` ``[images, 3]``); empty for text.
        token_types: per-token modality (0 text, 1 image, 2 video) for VLMs, else None.
        images: the prepared images the ids hold, in order (for engines that take images
            rather than pixel tensors, e.g. vLLM).
    """

    ids: list[int]
    mm: dict[str, torch.Tensor] = field(default_factory=dict)
    token_types: list[int] | None = None
    images: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def concat(parts: Sequence[Encoded]) -> Encoded:
        """One prompt from consecutive pieces: ids, token types and image tensors joined."""
        ids = [i for p in parts for i in p.ids]
        typed = any(p.token_types is not None for p in parts)
        types = [t for p in parts for t in (p.token_types or [0] * len(p.ids))] if typed else None
        keys = sorted({k for p in parts for k in p.mm})
        mm = {k: torch.cat([p.mm[k] for p in parts if k in p.mm]) for k in keys}
        images = [img for p in parts for img in p.images]
        return Encoded(ids=ids, mm=mm, token_types=types, images=images)


@dataclass
class Turn:
    """One model turn with the exact token ids it was generated from.

    Attributes:
        messages: the student context the response answers (the prompt, as messages).
        prompt: exact prompt token ids (and image tensors), including any forced assistant
            prefix.
        response_ids: exact sampled token ids (never re-tokenized).
        response_mask: 1 for response tokens to train (default: all).
        response_text: the decoded response, for display and action parsing.
        assistant_prefix: text forced at the start of the assistant turn (part of the prompt).
        action: the action parsed from the response, if any.
        valid: False when the action could not be parsed or was not admissible.
        reward: the environment reward of this turn.
        terminated: the environment ended the task on this turn.
        truncated: the turn limit ended the episode on this turn.
        info: the environment's info dict for this turn; privileged data under ``"privileged"``.
        sampled_logprobs: the rollout engine's log-probability of each response id, where
            the engine gives them (vLLM, some servers); the trainer corrects its loss with a
            truncated importance weight against them and logs the mismatch.
        frames: the images of the observation this turn answered, where the episode was
            asked to keep them (episodes kept to be looked at; a text model's messages
            leave images out).
    """

    messages: list[Message]
    prompt: Encoded
    response_ids: list[int]
    response_mask: list[int] | None = None
    response_text: str = ""
    assistant_prefix: str = ""
    action: str | None = None
    valid: bool = True
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    sampled_logprobs: list[float] | None = None
    frames: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sampled_logprobs is not None and len(self.sampled_logprobs) != len(
            self.response_ids
        ):
            raise ValueError(
                f"sampled_logprobs has {len(self.sampled_logprobs)} entries for "
                f"{len(self.response_ids)} response ids"
            )
        if self.response_mask is None:
            self.response_mask = [1] * len(self.response_ids)
        elif len(self.response_mask) != len(self.response_ids):
            raise ValueError(
                f"response_mask has {len(self.response_mask)} entries for "
                f"{len(self.response_ids)} response ids"
            )

    @property
    def prompt_ids(self) -> list[int]:
        """Exact prompt token ids."""
        return self.prompt.ids

    @property
    def privileged(self) -> dict[str, Any]:
        """This turn's privileged information (empty when the environment gave none)."""
        return dict(self.info.get("privileged", {}))


@dataclass
class Trajectory:
    """The turns of one episode, with its ids.

    ``group_id`` names the task and seed, so that rollouts of the same task can be compared
    (group baselines, successful siblings).
    """

    trajectory_id: str
    group_id: str
    turns: list[Turn] = field(default_factory=list)
    success: bool = False
    error: str | None = None
    task: str = ""  # the training task it was played in (a mixture's entry name)

    @property
    def response_tokens(self) -> int:
        """Generated tokens over all turns."""
        return sum(len(t.response_ids) for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: per turn the student messages' text, exact ids, action and
        outcome (images are left out)."""
        return {
            "trajectory_id": self.trajectory_id,
            "group_id": self.group_id,
            "task": self.task,
            "success": self.success,
            "error": self.error,
            "turns": [
                {
                    "messages": [{"role": m.role, "text": m.text} for m in t.messages],
                    "prompt_ids": t.prompt_ids,
                    "response_ids": t.response_ids,
                    "response_text": t.response_text,
                    "sampled_logprobs": t.sampled_logprobs,
                    "action": t.action,
                    "valid": t.valid,
                    "reward": t.reward,
                    "terminated": t.terminated,
                    "truncated": t.truncated,
                    "privileged": jsonable(t.privileged),
                    "feedback": t.info.get("outcome", {}).get("feedback"),
                }
                for t in self.turns
            ],
        }

    @property
    def total_reward(self) -> float:
        """Sum of the turn rewards."""
        return float(sum(t.reward for t in self.turns))

    @property
    def done(self) -> bool:
        """True when the last turn terminated or truncated the episode."""
        return bool(self.turns) and (self.turns[-1].terminated or self.turns[-1].truncated)


def jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold (images, arrays) replaced by its type name."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__name__}>"


@dataclass
class TeacherContext:
    """The messages the teacher sees for one turn: student context plus privileged info.

    Attributes:
        messages: the teacher's prompt messages.
        assistant_prefix: forced assistant text; must equal the student's so that the
            response ids line up.
        provider: the name of the provider that built it.
        views: for multi-view providers, one teacher context per view (losses are averaged
            over views with ``weights``).
        weights: the view weights (sum 1).
    """

    messages: list[Message]
    assistant_prefix: str = ""
    provider: str = ""
    views: list[TeacherContext] | None = None
    weights: list[float] | None = None

    def all_views(self) -> list[tuple[TeacherContext, float]]:
        """``(context, weight)`` pairs: the views of a multi-view context, else itself."""
        if not self.views:
            return [(self, 1.0)]
        weights = self.weights or [1.0 / len(self.views)] * len(self.views)
        return list(zip(self.views, weights))
