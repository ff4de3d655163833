"""``DescribeObservations``: any observation becomes text (and optionally an image)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs
from mmopsd.envs.base import PRINTABLE, TEXT_MAX, text_space


class DescribeObservations(gym.ObservationWrapper, RecordConstructorArgs):
    """Turn the wrapped observation into mmopsd's form with a user-supplied describer.

    ``describe(observation, env)`` gets the wrapped observation and the unwrapped environment
    and returns text, or ``{"text": ..., "image": HxWx3 uint8}``. Text is kept inside the
    printable-text space (other characters become ``?``).

    Args:
        env: the environment to wrap.
        describe: observation, unwrapped env -> text or ``{"text", "image"}``.
        image_shape: ``(H, W, 3)`` when the describer returns an image (declares the space).
    """

    def __init__(
        self,
        env: gym.Env,
        describe: Callable[[Any, gym.Env], str | dict[str, Any]],
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        RecordConstructorArgs.__init__(self, describe=describe, image_shape=image_shape)
        gym.ObservationWrapper.__init__(self, env)
        self.describe = describe
        self.image_shape = image_shape
        if image_shape is None:
            self.observation_space = text_space()
        else:
            image = spaces.Box(0, 255, shape=tuple(image_shape), dtype=np.uint8)
            self.observation_space = spaces.Dict({"text": text_space(), "image": image})

    def observation(self, observation: Any) -> str | dict[str, Any]:
        """The described observation."""
        out = self.describe(observation, self.env.unwrapped)
        if self.image_shape is None:
            if not isinstance(out, str):
                raise TypeError(
                    f"describe must return text when no image_shape is given, got "
                    f"{type(out).__name__}"
                )
            return printable(out)
        if not isinstance(out, dict) or "text" not in out or "image" not in out:
            raise TypeError("describe must return {'text': ..., 'image': ...} with image_shape")
        image = np.asarray(out["image"], dtype=np.uint8)
        if image.shape != tuple(self.image_shape):
            raise ValueError(f"described image has shape {image.shape}, not {self.image_shape}")
        return {"text": printable(out["text"]), "image": image}


def printable(text: str) -> str:
    """``text`` inside the printable-text space: other characters become ``?``, cut to size."""
    return "".join(c if c in PRINTABLE else "?" for c in str(text))[:TEXT_MAX]
