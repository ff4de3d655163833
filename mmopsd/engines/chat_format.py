"""Our messages as OpenAI chat messages: text parts as text, images as PNG data URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from mmopsd.types import ImagePart, Message


def data_url(image: Image.Image) -> str:
    """A lossless ``data:image/png;base64,...`` URL of ``image``."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Chat-completions messages: a text-only message keeps a plain string; a message with
    images becomes a list of ``text`` and ``image_url`` parts in their order."""
    out = []
    for m in messages:
        if not m.images:
            out.append({"role": m.role, "content": m.text})
            continue
        parts: list[dict[str, Any]] = []
        for part in m.parts:
            if isinstance(part, ImagePart):
                parts.append({"type": "image_url", "image_url": {"url": data_url(part.image)}})
            elif part.text:
                parts.append({"type": "text", "text": part.text})
        out.append({"role": m.role, "content": parts})
    return out
