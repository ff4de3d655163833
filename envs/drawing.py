"""Shared pieces of the image environments: fonts, observation spaces, colours."""

from __future__ import annotations

from functools import cache

import numpy as np
from gymnasium import spaces
from mmopsd.envs.base import text_space
from PIL import Image, ImageFont

PALETTE = {
    "red": (220, 50, 47),
    "green": (60, 160, 60),
    "blue": (38, 110, 210),
    "yellow": (235, 200, 40),
    "purple": (140, 80, 190),
    "orange": (240, 140, 30),
    "black": (20, 20, 20),
    "white": (250, 250, 250),
}


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (no system fonts needed)."""
    return ImageFont.load_default(size=size)


def image_text_space(height: int, width: int) -> spaces.Dict:
    """Observations ``{"text": str, "image": uint8 [H, W, 3]}``."""
    return spaces.Dict(
        {
            "text": text_space(),
            "image": spaces.Box(0, 255, (height, width, 3), dtype=np.uint8),
        }
    )


def as_array(image: Image.Image) -> np.ndarray:
    """An RGB image as a ``[H, W, 3]`` uint8 array."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
