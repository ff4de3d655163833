"""Privileged-information providers: turn a turn's ``info["privileged"]`` into the teacher's
context. Select by name with :func:`build_provider`; third-party providers register through
the ``mmopsd.providers`` entry-point group."""

from mmopsd.privileged import (  # noqa: F401  (registers the built-ins)
    compose,
    feedback,
    future_frames,
    hint,
    image_crop,
    reference,
    skills,
)
from mmopsd.privileged.base import (
    PROVIDERS,
    Episode,
    MissingPrivilegedKey,
    Provider,
    ReadsOneKey,
    append_to_last_user,
    build_provider,
    require,
)
from mmopsd.privileged.leak import PrivilegedLeak, check_no_leak

__all__ = [
    "PROVIDERS",
    "Episode",
    "MissingPrivilegedKey",
    "PrivilegedLeak",
    "Provider",
    "ReadsOneKey",
    "append_to_last_user",
    "build_provider",
    "check_no_leak",
    "require",
]
