"""Image preparation for Qwen-VL models: qwen-vl-utils where it imports, else plain PIL.

Both paths apply the same rule: keep the aspect ratio, make both sides multiples of
``patch_size * merge_size``, and keep the pixel count within ``[min_pixels, max_pixels]``.
qwen-vl-utils imports torchvision at module top, so on machines without torchvision the
built-in path is used; a test checks that both give identical pixel values.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

MAX_RATIO = 200


def load_image(source: Image.Image | str | Path) -> Image.Image:
    """Open an image from a PIL image or a local path, as RGB (alpha over white)."""
    if isinstance(source, str | Path):
        path = Path(str(source).removeprefix("file://"))
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        source = Image.open(path)
    if not isinstance(source, Image.Image):
        raise TypeError(
            f"images must be PIL.Image.Image objects or local file paths, "
            f"got {type(source).__name__}"
        )
    return to_rgb(source)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of ``image``; transparent pixels become white."""
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def smart_resize(
    height: int, width: int, *, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """Target ``(height, width)``: multiples of ``factor``, pixel count within bounds."""
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"image aspect ratio must be below {MAX_RATIO}, got {height}x{width}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


@cache
def _qwen_fetch_image() -> Any | None:
    try:
        from qwen_vl_utils import fetch_image  # imports torchvision at module top
    except Exception:
        return None
    return fetch_image


def qwen_vl_utils_available() -> bool:
    """True when ``qwen_vl_utils`` imports on this machine."""
    return _qwen_fetch_image() is not None


def prepare_image(
    image: Image.Image,
    *,
    patch_size: int = 14,
    merge_size: int = 2,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    backend: str = "auto",
) -> Image.Image:
    """Resize ``image`` for a Qwen-VL vision tower.

    Args:
        image: a PIL image.
        patch_size: the vision tower's patch size (14 for Qwen2/2.5-VL, 16 for Qwen3-VL).
        merge_size: spatial merge size (2).
        min_pixels: lower bound on the pixel count (default 4 merged patches).
        max_pixels: upper bound on the pixel count (default 16384 merged patches).
        backend: ``auto`` (qwen-vl-utils when it imports), ``qwen_vl_utils`` or ``pil``.
    """
    factor = patch_size * merge_size
    min_pixels = min_pixels if min_pixels is not None else 4 * factor * factor
    max_pixels = max_pixels if max_pixels is not None else 16384 * factor * factor
    fetch = _qwen_fetch_image() if backend in ("auto", "qwen_vl_utils") else None
    if backend == "qwen_vl_utils" and fetch is None:
        raise ImportError("qwen_vl_utils does not import here (it needs torchvision); use 'pil'")
    image = load_image(image)
    if fetch is not None and merge_size == 2:
        ele = {"image": image, "min_pixels": min_pixels, "max_pixels": max_pixels}
        return fetch(ele, image_patch_size=patch_size)
    width, height = image.size
    h, w = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return image.resize((w, h))
