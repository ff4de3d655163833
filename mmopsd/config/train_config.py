"""The training configuration: its sections, and the checks that span them."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from mmopsd.config.fields import option
from mmopsd.config.sections import (
    DEFAULT_ENV,
    EvaluationConfig,
    MethodConfig,
    ModelConfig,
    OptimizerConfig,
    RolloutConfig,
    RunConfig,
    TaskConfig,
    TeacherConfig,
)
from mmopsd.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything a self-distillation run needs, in sections (``docs/configuration.md``
    lists every field; a section left out keeps its defaults).

    Loading checks every field and every relation between sections, importing neither
    torch nor the rest of the library; what needs a registry or the machine (environment
    ids, providers, losses, the method's own fields) is checked before the model loads
    (:func:`mmopsd.training.components.check`).
    """

    imports: list[str] = option(
        doc="Modules imported before the run, e.g. the one registering your own environments, "
        "providers, losses or methods (`[mypkg.envs]`).",
        factory=list,
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: list[TaskConfig] = field(default_factory=lambda: [TaskConfig(DEFAULT_ENV)])
    method: MethodConfig = field(default_factory=MethodConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        """The relations between sections, checked now: a bad config costs nothing."""
        self._check_types()
        if not self.tasks:
            raise ConfigError(
                "tasks is empty; list at least one, e.g. tasks: [{env: mmopsd/KeyDoor-v0}]"
            )
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"tasks named twice: {twice}; give each a 'name'")
        batch, group = self.optimizer.batch_size, self.method.group_size
        if batch % group:
            raise ConfigError(
                f"optimizer.batch_size ({batch}) must be a multiple of method.group_size ({group})"
            )
        if self.method.kl_coef and self.teacher.update != "frozen":
            raise ConfigError(
                "method.kl_coef needs teacher.update: frozen (the initial model the penalty is "
                "measured to)"
            )
        teacher_plays = self.method.actor == "teacher" or self.method.teacher_share
        if teacher_plays and self.rollout.engine != "hf":
            raise ConfigError(
                "method.actor: teacher and method.teacher_share play with the local teacher; "
                "set rollout.engine: hf"
            )

    def _check_types(self) -> None:
        """Each section is its dataclass (plain data goes through ``from_dict``)."""
        hints = typing.get_type_hints(TrainConfig)
        kinds = {f.name: hints[f.name] for f in dataclasses.fields(self)}
        kinds = {name: kind for name, kind in kinds.items() if dataclasses.is_dataclass(kind)}
        wrong = [k for k, kind in kinds.items() if not isinstance(getattr(self, k), kind)]
        if not isinstance(self.tasks, list) or not all(
            isinstance(t, TaskConfig) for t in self.tasks
        ):
            wrong.append("tasks")
        if wrong:
            raise ConfigError(
                f"TrainConfig's {', '.join(wrong)} must be its section dataclasses "
                "(ModelConfig, [TaskConfig], ...); build a config from plain data with "
                "mmopsd.config.from_dict"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML and checkpoints)."""
        return dataclasses.asdict(self)
