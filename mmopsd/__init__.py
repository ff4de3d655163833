"""mmopsd: multimodal and agentic on-policy self-distillation.

The student is a model with its plain context; the teacher is the same model whose context
also holds privileged information. Both score the student's own sampled response ids, and a
token-level divergence between them trains the student.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use: `import mmopsd.config` stays light
    from mmopsd.config import TrainConfig, load_config
    from mmopsd.errors import (
        AlignmentError,
        ConfigError,
        MmopsdError,
        ModelNotFoundError,
        UnknownNameError,
    )
    from mmopsd.policies import Policy, load_policy
    from mmopsd.training.loop import train
    from mmopsd.training.teachers import build_teacher
    from mmopsd.types import (
        Encoded,
        ImagePart,
        Message,
        TeacherContext,
        TextPart,
        Trajectory,
        Turn,
        system,
        user,
    )

# Each public name and the module that defines it.
_HOMES = {
    "TrainConfig": "mmopsd.config", "load_config": "mmopsd.config",
    "AlignmentError": "mmopsd.errors", "ConfigError": "mmopsd.errors",
    "MmopsdError": "mmopsd.errors", "ModelNotFoundError": "mmopsd.errors",
    "UnknownNameError": "mmopsd.errors",
    "Policy": "mmopsd.policies", "load_policy": "mmopsd.policies",
    "train": "mmopsd.training.loop", "build_teacher": "mmopsd.training.teachers",
    "Encoded": "mmopsd.types", "ImagePart": "mmopsd.types", "Message": "mmopsd.types",
    "TeacherContext": "mmopsd.types", "TextPart": "mmopsd.types",
    "Trajectory": "mmopsd.types", "Turn": "mmopsd.types", "system": "mmopsd.types",
    "user": "mmopsd.types",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'mmopsd' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AlignmentError",
    "ConfigError",
    "Encoded",
    "ImagePart",
    "Message",
    "MmopsdError",
    "ModelNotFoundError",
    "Policy",
    "TeacherContext",
    "TextPart",
    "TrainConfig",
    "Trajectory",
    "Turn",
    "UnknownNameError",
    "build_teacher",
    "load_config",
    "load_policy",
    "system",
    "train",
    "user",
]
