"""The leak guard: no student context may hold privileged content.

Privileged text (strings of at least ``min_chars`` characters under the checked keys of
``info["privileged"]``, searched in nested lists and dicts) must not occur in any system or user
message the student sees, and no privileged image (by pixel fingerprint) may appear among the
student's images. Assistant messages are the student's own words and are not checked: a
student that says "open the red door" has not been told so. Nor is a privileged string that the
student has said itself: an environment that echoes an earlier answer ("'I open the blue door'
names none of the doors") repeats the student, it does not tell it a later room's answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from mmopsd.errors import MmopsdError
from mmopsd.types import Message


class PrivilegedLeak(MmopsdError):
    """Privileged content reached the student's context."""


def fingerprint(image: Image.Image | np.ndarray) -> str:
    """A hash of an image's size, mode and pixels."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    digest = hashlib.sha1(image.tobytes())
    digest.update(f"{image.size}{image.mode}".encode())
    return digest.hexdigest()


def _walk(key: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(f"{key}.{k}", v)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk(f"{key}[{i}]", v)
    else:
        yield key, value


def check_no_leak(
    messages: Sequence[Message],
    privileged: Mapping[str, Any],
    *,
    keys: Sequence[str] | None = None,
    min_chars: int = 12,
) -> None:
    """Raise :class:`PrivilegedLeak` if privileged content occurs in the student's messages.

    Args:
        messages: the student's context.
        privileged: the turn's ``info["privileged"]``.
        keys: the keys to check (default: all).
        min_chars: shorter strings are not checked (a colour or a number may be public).
    """
    shown = [m for m in messages if m.role != "assistant"]
    text = "\n".join(m.text for m in shown)
    said = "\n".join(m.text for m in messages if m.role == "assistant")
    prints = {fingerprint(img) for m in shown for img in m.images}
    for key in keys if keys is not None else list(privileged):
        if key not in privileged:
            continue
        for where, value in _walk(key, privileged[key]):
            if (
                isinstance(value, str)
                and len(value.strip()) >= min_chars
                and value in text
                and value not in said  # an echo of the student's own answer
            ):
                raise PrivilegedLeak(
                    f"the student's context contains info['privileged'][{where!r}] "
                    f"({value[:60]!r}); privileged information must reach only the teacher. "
                    "Fix the environment's observation or the prompt; if this text is public, "
                    "move it out of info['privileged']"
                )
            if isinstance(value, Image.Image | np.ndarray) and fingerprint(value) in prints:
                raise PrivilegedLeak(
                    f"the student's context contains the privileged image "
                    f"info['privileged'][{where!r}]; privileged images must reach only the teacher"
                )
