"""Config -> components: everything a run is built from, checked before the model loads."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import get_constant_schedule_with_warmup

from mmopsd.agents.prompting import PromptSpec, prompt_for
from mmopsd.allocator import tune_cpu_allocator
from mmopsd.checks import check_loss, check_token_weighting, check_turn_weighting
from mmopsd.config import MethodConfig, ModelConfig, TrainConfig, import_modules
from mmopsd.engines.base import Engine
from mmopsd.engines.build import build_engine, check_engine
from mmopsd.errors import ConfigError
from mmopsd.evaluation.cache import EvalCache
from mmopsd.evaluation.tasks import extra_tasks
from mmopsd.losses import get as get_loss
from mmopsd.losses.weighting import WEIGHTINGS
from mmopsd.methods import Method, build_method, resolve
from mmopsd.methods.turn_weighting import TURN_WEIGHTINGS
from mmopsd.parallel import Parallel
from mmopsd.policies.base import Policy
from mmopsd.policies.checkpointing import recompute_activations
from mmopsd.policies.loading import load_policy, resolve_device
from mmopsd.policies.precision import MIXED, compute_dtype
from mmopsd.policies.vision import freeze_vision_tower
from mmopsd.privileged.base import Provider, build_provider
from mmopsd.rollout import check_env
from mmopsd.tracking import check_report_to
from mmopsd.training.distill import Objective
from mmopsd.training.mixture import ByTask, TaskEnvs, TrainTask, train_tasks
from mmopsd.training.teachers import Teacher, build_teacher

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything a run is built from."""

    policy: Policy
    teacher: Teacher
    provider: Provider  # each episode's task's provider (ByTask)
    method: Method
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    envs: TaskEnvs
    engine: Engine
    teacher_eval: dict[str, Any] | None = None  # reused while the teacher is static
    parallel: Parallel = dataclasses.field(default_factory=Parallel)
    eval_cache: EvalCache = dataclasses.field(default_factory=lambda: EvalCache(None))
    tasks: list[TrainTask] = dataclasses.field(default_factory=list)  # the training mixture
    specs: dict[str, PromptSpec] = dataclasses.field(default_factory=dict)  # by task name
    providers: dict[str, Provider] = dataclasses.field(default_factory=dict)  # by task name
    config: TrainConfig | None = None  # the run's config, its method's fields filled in


def build(
    config: TrainConfig, policy: Policy | None = None, parallel: Parallel | None = None
) -> Components:
    """Turn the config into components (``policy`` may be given, e.g. a tiny test model);
    ``parallel`` is this process's place in a data-parallel run."""
    par, config = parallel or Parallel(), prepared(config)
    torch.manual_seed(config.run.seed)
    if resolve_device(config.model.device).type == "cpu":
        tune_cpu_allocator()
    providers, method, objective = check(config, par)  # a mistake costs a second, not a model load
    tasks, provider = train_tasks(config), ByTask(providers)
    envs = TaskEnvs(tasks, config.rollout.split, keep=config.optimizer.batch_size)
    envs.prepare_step(config.optimizer.batch_size // par.world)  # made ahead, in threads
    policy = student(config.model, policy)
    teacher = build_teacher(config.teacher.update, policy, **config.teacher.update_kwargs)
    provider.bind(policy, config.run.out_dir)
    policy.forward_model = par.wrap(policy.model)  # FSDP2 shards in place: before the optimizer
    if par.sharded:
        teacher.rebind()  # a teacher that follows the student reads the sharded parameters
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = config.optimizer
    optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
    scheduler = get_constant_schedule_with_warmup(optimizer, opt.warmup_steps)
    specs = {t.name: prompt_for(t.env, t.history) for t in tasks}
    return Components(
        policy, teacher, provider, method, objective, optimizer, scheduler, envs,
        _engine(config, policy, par), parallel=par,
        eval_cache=EvalCache(_cache_path(config, par)), tasks=tasks, specs=specs,
        providers=providers, config=config,
    )  # fmt: skip


def prepared(config: TrainConfig) -> TrainConfig:
    """``config`` as a run uses it: its ``imports`` imported (they may register the method),
    its method's fixed fields filled in (:func:`~mmopsd.methods.resolve`)."""
    import_modules(config.imports)
    return resolve(config)


def student(model: ModelConfig, policy: Policy | None) -> Policy:
    """The student: ``policy`` if given, else the configured model loaded, with LoRA
    adapters, a frozen vision tower and activation checkpointing where configured."""
    policy = policy or load_policy(model.name, dtype=model.dtype, device=model.device)  # type: ignore[arg-type]
    if model.lora:
        from mmopsd.training.lora import apply_lora

        policy.model = apply_lora(
            policy.model, r=model.lora_r, alpha=model.lora_alpha, targets=model.lora_targets
        )
    if model.freeze_vision:
        freeze_vision_tower(policy.model)
    if model.activation_checkpointing:
        recompute_activations(policy.model)
    return policy


def _cache_path(config: TrainConfig, par: Parallel) -> Path | None:
    """The evaluation cache's file: ``eval_cache`` under ``out_dir`` (``..`` folded away;
    an absolute path as it is); none when it is ``""`` or in a data-parallel run (its ranks
    must all play every evaluation)."""
    if not config.evaluation.cache or par.active:
        return None
    return Path(os.path.normpath(Path(config.run.out_dir) / config.evaluation.cache))


def check(config: TrainConfig, par: Parallel) -> tuple[dict[str, Provider], Method, Objective]:
    """Everything the config names, checked before any model loads: the split of tasks over
    processes, imports, providers, method, loss, weightings, engine and every trained and
    evaluated environment. Returns each training task's provider (by task name), the method
    and its objective."""
    tasks = config.optimizer.batch_size // config.method.group_size
    if tasks % par.world:
        raise ConfigError(
            f"{tasks} tasks per step (optimizer.batch_size / method.group_size) cannot be shared "
            f"by {par.world} processes: make it a multiple of the number of processes (groups "
            "never split)"
        )
    import_modules(config.imports)
    _check_precision(config)
    tasks = train_tasks(config)
    providers = {t.name: build_provider(t.provider, **t.provider_kwargs) for t in tasks}
    config = resolve(config)
    method = build_method(config)
    objective = _objective(config, method)
    _check_weightings(config.method)
    check_engine(config.rollout.engine, config.rollout.engine_kwargs)
    check_report_to(config.run.report_to)
    for train in tasks:
        check_env(train.env, config.evaluation.split, train.env_kwargs)
    for kind in ("ood", "retain"):
        for task in extra_tasks(config, kind):
            check_env(task.env, task.split, dict(task.env_kwargs))
    return providers, method, objective


def _check_weightings(m: MethodConfig) -> None:
    """The token and turn weightings are registered and take their options."""
    if m.token_weighting != "none":
        weighting = WEIGHTINGS.get(m.token_weighting)
        check_token_weighting(m.token_weighting, weighting, m.weighting_kwargs)
    weigh_turns = TURN_WEIGHTINGS.get(m.turn_weighting)
    check_turn_weighting(m.turn_weighting, weigh_turns, m.turn_weighting_kwargs)


def _check_precision(config: TrainConfig) -> None:
    """``bf16-mixed`` only where the device has the kernels (refused now, not after the
    weights load)."""
    if config.model.dtype == MIXED:
        try:
            compute_dtype(config.model.dtype, resolve_device(config.model.device))
        except ValueError as err:
            raise ConfigError(str(err)) from None


def _objective(config: TrainConfig, method: Method) -> Objective:
    """The method's terms with the configured token weighting and importance cap; the
    configured loss checked against its options."""
    check_loss(config.method.loss, get_loss(config.method.loss), config.method.loss_kwargs)
    return Objective(
        terms=method.terms(),
        weighting=config.method.token_weighting,
        weighting_options=dict(config.method.weighting_kwargs),
        importance_cap=config.method.importance_cap,
    )


def _engine(config: TrainConfig, policy: Policy, par: Parallel) -> Engine:
    """The configured rollout engine (``hf``, the policy's own model, by default)."""
    engine = build_engine(
        config.rollout.engine,
        policy,
        student_model=config.model.name,
        processes=par.world,
        rank=par.rank,
        run_seed=config.run.seed,
        **config.rollout.engine_kwargs,
    )
    if not engine.follows_weights and par.main:
        log.warning(
            "engine %s: the served model is not updated by this run, so rollouts grow "
            "off-policy as the student trains (corrected by truncated importance weights "
            "only where the server returns log-probs); evaluations use the student itself",
            config.rollout.engine,
        )
    return engine
