"""The training configuration, in sections (:class:`TrainConfig`), loaded from YAML plus
``key=value`` overrides. Every default and every field's documentation lives here, once;
loading imports neither torch nor the rest of the library.
"""

from mmopsd.config.loading import (
    apply_overrides,
    from_dict,
    import_modules,
    load_config,
    load_data,
    merge,
    parse_yaml,
    run_config_near,
)
from mmopsd.config.migration import is_flat, migrate
from mmopsd.config.sections import (
    EvaluationConfig,
    MethodConfig,
    ModelConfig,
    OptimizerConfig,
    RolloutConfig,
    RunConfig,
    TaskConfig,
    TeacherConfig,
)
from mmopsd.config.train_config import TrainConfig

__all__ = [
    "EvaluationConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RolloutConfig",
    "RunConfig",
    "TaskConfig",
    "TeacherConfig",
    "TrainConfig",
    "apply_overrides",
    "choices",
    "from_dict",
    "import_modules",
    "is_flat",
    "load_config",
    "load_data",
    "merge",
    "migrate",
    "parse_yaml",
    "run_config_near",
]


def choices(section: str, name: str) -> tuple[object, ...]:
    """The allowed values of field ``name`` of ``section`` (e.g. ``choices("model",
    "dtype")``; empty where any value of its type goes)."""
    import dataclasses
    import typing

    cls = typing.get_type_hints(TrainConfig)[section]
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return tuple(field.metadata.get("choices", ()))
