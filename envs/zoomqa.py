"""ZoomQA: questions about small details in a large, cluttered image.

The evidence (a short word, a coloured square, or a few dots inside a small framed box) covers
a tiny part of the image; the rest is clutter of the same kinds. The question names the
framed box. Privileged information: the evidence box (``boxes``, for the ``image_crop``
provider) and the answer. Single turn; success = the answer named.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from mmopsd.envs.base import AgentEnv, Outcome
from mmopsd.envs.drawing import PALETTE, as_array, font, image_text_space
from mmopsd.envs.seeds import check_split
from PIL import Image, ImageDraw

KINDS = ("text", "colour", "count")
WORDS = ("cat", "sun", "map", "key", "box", "pen", "cup", "hat", "owl", "fig", "jar", "net")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


class ZoomQAEnv(AgentEnv):
    """One question about a small framed detail of a large image.

    Args:
        size: image side in pixels.
        kinds: question kinds drawn from (``text``, ``colour``, ``count``).
        box_size: side of the framed evidence box.
        clutter: distractor items drawn outside the box.
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        render_mode: ``rgb_array`` or None.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self,
        size: int = 768,
        kinds: tuple[str, ...] | list[str] = KINDS,
        box_size: int = 40,
        clutter: int = 30,
        split: str = "train",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_steps=1, render_mode=None)
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"ZoomQA kinds must be among {', '.join(KINDS)}, got {list(kinds)}")
        check_split(split, "ZoomQA split")
        if not 16 <= box_size <= size // 4:
            raise ValueError(f"box_size must lie in [16, size/4], got {box_size} for size {size}")
        self.size, self.kinds, self.box_size, self.clutter = size, tuple(kinds), box_size, clutter
        self.split = split
        self.render_mode = render_mode
        self.observation_space = image_text_space(size, size)
        self.image: Image.Image | None = None
        self.box: list[int] = []
        self.answer = ""
        self.kind = ""

    def new_task(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Draw the image, the framed evidence and the question."""
        rng = self.np_random
        self.kind = self.kinds[int(rng.integers(len(self.kinds)))]
        image = Image.new("RGB", (self.size, self.size), (235, 232, 225))
        draw = ImageDraw.Draw(image)
        b = self.box_size
        x0 = int(rng.integers(b, self.size - 2 * b))
        y0 = int(rng.integers(b, self.size - 2 * b))
        self.box = [x0, y0, x0 + b, y0 + b]
        for _ in range(self.clutter):
            x, y = (int(v) for v in rng.integers(0, self.size - b, 2))
            if x + b > x0 - 4 and x < x0 + b + 4 and y + b > y0 - 4 and y < y0 + b + 4:
                continue
            self._item(draw, x, y, str(rng.choice(KINDS)))
        self.answer = self._item(draw, x0, y0, self.kind)
        draw.rectangle(self.box, outline=PALETTE["black"], width=2)
        self.image = image
        return {"text": self.question(), "image": as_array(image)}

    def question(self) -> str:
        """The question about the framed box."""
        what = {
            "text": "What word is written in the small black-framed box?",
            "colour": "What colour is the square in the small black-framed box?",
            "count": "How many dots are in the small black-framed box?",
        }[self.kind]
        return f"{what} Answer with one word."

    def apply(self, action: str) -> Outcome:
        """Check the answer."""
        words = [w.strip(string.punctuation) for w in action.lower().split()]
        words = [NUMBERS.get(w, w) for w in words]
        right = self.answer in words
        feedback = "Correct." if right else f"Wrong: the answer is {self.answer}."
        return Outcome(
            {"text": feedback, "image": as_array(self.image)}, float(right), True, right, feedback
        )

    free_text = True

    def canonical(self, action: str) -> str | None:
        """Any non-empty answer is a valid action."""
        return action.strip() or None

    def invalid_observation(self, action: str) -> dict[str, Any]:
        """The question again."""
        return {"text": "Please answer. " + self.question(), "image": as_array(self.image)}

    def privileged(self) -> dict[str, Any]:
        """The evidence box and the answer."""
        if not self.box:
            return {}
        return {"boxes": [list(self.box)], "answer": self.answer, "kind": self.kind}

    def render(self) -> np.ndarray | None:
        """The image (``rgb_array`` mode)."""
        return as_array(self.image) if self.render_mode == "rgb_array" and self.image else None

    def _item(self, draw: ImageDraw.ImageDraw, x: int, y: int, kind: str) -> str:
        rng, b = self.np_random, self.box_size
        if kind == "text":
            word = str(rng.choice(WORDS))
            draw.text((x + 4, y + b // 4), word, fill=PALETTE["black"], font=font(max(8, b // 4)))
            return word
        if kind == "colour":
            colour = str(rng.choice(COLOURS))
            s = b // 2
            draw.rectangle(
                [x + s // 2, y + s // 2, x + s // 2 + s, y + s // 2 + s], fill=PALETTE[colour]
            )
            return colour
        n = int(rng.integers(1, 6))
        for i in range(n):
            cx, cy = x + 6 + (i % 3) * (b // 3), y + 8 + (i // 3) * (b // 2)
            draw.ellipse([cx, cy, cx + 4, cy + 4], fill=PALETTE["black"])
        return str(n)
