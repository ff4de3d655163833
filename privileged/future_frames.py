"""``future_frames``: what the next k steps look like when the task is done well.

The frames come from ``info["privileged"]["future_frames"]`` (images along the expert plan,
which environments such as ``mmopsd/Sokoban-v0`` render by simulating the plan on a copy of
their state). They are added as images after a caption at the end of the last user message.
Video input is not offered: frames always go in as a sequence of images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmopsd.privileged.base import PROVIDERS, Episode, ReadsOneKey, last_user, require
from PIL import Image

from mmopsd.types import ImagePart, Message, TeacherContext, TextPart


@PROVIDERS.register("future_frames")
class FutureFramesProvider(ReadsOneKey):
    """The next ``k`` frames of a good continuation, for the teacher.

    Args:
        k: frames shown (at most those supplied).
        key: the privileged field with the frames (PIL images or ``HxWx3`` uint8 arrays).
        caption: text placed before the frames.
    """

    name = "future_frames"

    def __init__(
        self,
        k: int = 2,
        key: str = "future_frames",
        caption: str = "\nThe next frames if you act well:",
    ) -> None:
        if k < 1:
            raise ValueError(f"future_frames needs k >= 1, got {k}")
        self.k, self.key, self.caption = k, key, caption

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages plus the next frames."""
        frames = list(require(privileged, self.key, self.name))[: self.k]
        out = list(messages)
        if frames:
            i = last_user(out)
            parts = [TextPart(self.caption), *(ImagePart(_image(f)) for f in frames)]
            out[i] = Message(out[i].role, [*out[i].parts, *parts])
        return TeacherContext(out, assistant_prefix, self.name)


def _image(frame: Any) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame
    if isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.dtype == np.uint8:
        return Image.fromarray(frame)
    raise TypeError(
        f"future frames must be PIL images or HxWx3 uint8 arrays, got {type(frame).__name__}"
    )
