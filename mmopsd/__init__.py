"""mmopsd: multimodal and agentic on-policy self-distillation.

The student is a model with its plain context; the teacher is the same model whose context
also holds privileged information. Both score the student's own sampled response ids, and a
token-level divergence between them trains the student.
"""

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
