"""What a training method reads of the run's configuration: who plays, which turns train,
the loss terms' options. Built from the config by :meth:`MethodSettings.from_config`; a
method never reads the config itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MethodSettings:
    """The method's fields of a config (each documented in
    :class:`~mmopsd.config.TrainConfig`).

    Attributes:
        actor: who plays the training episodes: ``student`` or ``teacher``.
        teacher_share: share λ of each step's episodes (whole groups) the teacher plays.
        success_only: train only on won episodes.
        distill_coef: weight of the distillation term.
        loss: the divergence (a registered loss name).
        loss_kwargs: its options.
        turn_weighting: ``uniform``, ``discount`` or ``sod``.
        turn_weighting_kwargs: its options.
        curriculum_every: TCOD curriculum period (0: off).
        curriculum_start: turns distilled at the first step.
        rl: the RL term: ``none``, ``add`` or ``route``.
        rl_coef: weight of the RL term.
        rl_advantage: ``grpo`` or ``rloo``.
        group_size: episodes per task and seed in a batch.
        ppo_epochs: optimizer passes over each batch.
        clip_eps: PPO clip range of the RL term's ratio.
        kl_coef: weight of the KL penalty to the initial model.
    """

    actor: str = "student"
    teacher_share: float = 0.0
    success_only: bool = False
    distill_coef: float = 1.0
    loss: str = "forward_kl"
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    turn_weighting: str = "uniform"
    turn_weighting_kwargs: Mapping[str, Any] = field(default_factory=dict)
    curriculum_every: int = 0
    curriculum_start: int = 1
    rl: str = "none"
    rl_coef: float = 1.0
    rl_advantage: str = "grpo"
    group_size: int = 1
    ppo_epochs: int = 1
    clip_eps: float = 0.2
    kl_coef: float = 0.0

    @classmethod
    def from_config(cls, config: Any) -> MethodSettings:
        """The fields of ``config`` (a :class:`~mmopsd.config.TrainConfig`) a method reads."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})
