"""``image_crop``: zoom on the evidence.

The evidence boxes come from ``info["privileged"]["boxes"]``: each a ``[x0, y0, x1, y1]`` box
in pixels of the conversation's first image, or ``{"box": [...], "image": i}`` for the i-th
image of the student's messages. Each box is padded, cropped, upscaled, and either added to
the last user message beside the full image (``mode="add"``) or put in place of the image it
came from (``mode="replace"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmopsd.privileged.base import PROVIDERS, Episode, ReadsOneKey, last_user, require
from PIL import Image

from mmopsd.types import ImagePart, Message, TeacherContext, TextPart


def crop_box(
    image: Image.Image, box: Sequence[float], *, padding: float = 0.25, upscale: float = 2.0
) -> Image.Image:
    """``box`` grown by ``padding`` (a fraction of its size on each side), clipped to the
    image, cropped, and resized by ``upscale``."""
    if len(box) != 4:
        raise ValueError(f"a box is [x0, y0, x1, y1], got {list(box)}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {list(box)} is empty (need x1 > x0 and y1 > y0)")
    px, py = (x1 - x0) * padding, (y1 - y0) * padding
    w, h = image.size
    left, top = max(0, int(x0 - px)), max(0, int(y0 - py))
    right, bottom = min(w, round(x1 + px)), min(h, round(y1 + py))
    if right <= left or bottom <= top:
        raise ValueError(f"box {list(box)} lies outside the {w}x{h} image")
    crop = image.crop((left, top, right, bottom))
    size = (max(1, round(crop.width * upscale)), max(1, round(crop.height * upscale)))
    return crop.resize(size, Image.Resampling.BICUBIC)


@PROVIDERS.register("image_crop")
class ImageCropProvider(ReadsOneKey):
    """Crops of the evidence regions for the teacher.

    Args:
        key: the privileged field with the boxes.
        mode: ``add`` (crops beside the full images) or ``replace`` (a crop replaces its image;
            several crops of one image all take its place).
        padding: context kept around a box, as a fraction of its size per side.
        upscale: resize factor of a crop.
        caption: text placed before the crops (``add`` mode).
    """

    name = "image_crop"

    def __init__(
        self,
        key: str = "boxes",
        mode: str = "add",
        padding: float = 0.25,
        upscale: float = 2.0,
        caption: str = "\nZoomed view of the evidence:",
    ) -> None:
        if mode not in ("add", "replace"):
            raise ValueError(f"image_crop mode must be 'add' or 'replace', got {mode!r}")
        if padding < 0 or upscale <= 0:
            raise ValueError(f"need padding >= 0 and upscale > 0, got {padding}, {upscale}")
        self.key, self.mode, self.padding, self.upscale = key, mode, padding, upscale
        self.caption = caption

    def __call__(
        self,
        messages: Sequence[Message],
        privileged: Mapping[str, Any],
        *,
        assistant_prefix: str = "",
        episode: Episode | None = None,
    ) -> TeacherContext:
        """The student's messages with the evidence crops."""
        boxes = require(privileged, self.key, self.name)
        images = [
            (i, j)
            for i, m in enumerate(messages)
            for j, p in enumerate(m.parts)
            if isinstance(p, ImagePart)
        ]
        if not images:
            raise ValueError("image_crop needs an image in the student's messages; none was found")
        crops: dict[int, list[Image.Image]] = {}
        for entry in boxes:
            box, index = (
                (entry["box"], int(entry.get("image", 0)))
                if isinstance(entry, Mapping)
                else (entry, 0)
            )
            if not 0 <= index < len(images):
                raise ValueError(
                    f"box refers to image {index}, but the context holds {len(images)} images"
                )
            i, j = images[index]
            source = messages[i].parts[j].image  # type: ignore[union-attr]
            crops.setdefault(index, []).append(
                crop_box(source, box, padding=self.padding, upscale=self.upscale)
            )
        out = list(messages)
        if self.mode == "replace":
            for index in sorted(crops, reverse=True):
                i, j = images[index]
                parts = out[i].parts
                out[i] = Message(
                    out[i].role,
                    [*parts[:j], *(ImagePart(c) for c in crops[index]), *parts[j + 1 :]],
                )
        else:
            k = last_user(out)
            extra = [
                TextPart(self.caption),
                *(ImagePart(c) for i in sorted(crops) for c in crops[i]),
            ]
            out[k] = Message(out[k].role, [*out[k].parts, *extra])
        return TeacherContext(out, assistant_prefix, self.name)
