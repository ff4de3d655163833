"""One optimizer step: on-policy rollouts, per-turn teacher contexts, turn-level distillation
(plus the optional RL term), update."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from mmopsd.allocator import give_back_if_short
from mmopsd.config import TrainConfig
from mmopsd.rollout import Job, Sampling, play
from mmopsd.training.components import Components
from mmopsd.training.distill import distill_backward, old_logprobs, turn_divergences
from mmopsd.training.mixture import draw
from mmopsd.training.parallel import Parallel
from mmopsd.training.turn_plan import TurnSample, plan_turns
from mmopsd.training.views import Key, Views, expand_views, save_rollouts, teacher_views
from mmopsd.types import Encoded, Trajectory


def train_step(step: int, c: Components, config: TrainConfig) -> dict[str, Any]:
    """One optimizer step; returns its metrics record."""
    start = time.perf_counter()
    par = c.parallel
    with par.gathered(c.policy.model):  # FSDP2: whole weights while generating
        trajs = _rollouts(step, c, config)
    if config.save_rollouts and par.main:  # every rank holds the whole batch
        save_rollouts(Path(config.out_dir) / "rollouts" / f"step-{step}.jsonl", trajs)
    planned, views = _plan(step, c, config, trajs)
    with par.gathered(c.policy.model):  # a provider may generate (skill summaries)
        c.provider.observe(trajs, step)
    own = _own_trajectories(par, config)  # this rank trains on its own episodes
    samples, teacher_prompts = expand_views([s for s in planned if s.trajectory in own], views)
    c.engine.sleep()  # the trainer takes the accelerator memory
    if config.ppo_epochs > 1:  # the ratio of later passes is clipped against these
        with par.gathered(c.policy.model):
            olds = old_logprobs(c.policy, samples, micro_batch_size=config.micro_batch_size)
        samples = [dataclasses.replace(s, old_logprobs=o) for s, o in zip(samples, olds)]
    stats, norm = _update(c, config, samples, teacher_prompts)
    for _ in range(config.ppo_epochs - 1):  # more passes over the same batch
        _update(c, config, samples, teacher_prompts)
    c.engine.sync(c.policy.model)  # the next rollouts sample the updated student
    give_back_if_short()  # the backward pass's free blocks, when the machine runs short
    c.teacher.update(step)
    record = _record(step, c, config, trajs, stats, norm)
    record["distilled_turns"] = sum(1 for s in planned if s.distill)
    own = len(_own_trajectories(par, config))
    record["teacher_episodes"] = par.world * teacher_episodes(own, config)
    record["seconds"] = time.perf_counter() - start
    return record


def _plan(
    step: int, c: Components, config: TrainConfig, trajs: list[Trajectory]
) -> tuple[list[TurnSample], Views]:
    """The turn plan of the batch and the teacher views of this rank's distilled turns
    (SOD weighting needs every turn's teacher divergence first)."""
    keyed = [((i, k), t) for i, tr in enumerate(trajs) for k, t in enumerate(tr.turns)]
    keyed = [(key, t) for key, t in keyed if t.response_ids]
    own = _own_trajectories(c.parallel, config)
    mine = [(key, t) for key, t in keyed if key[0] in own]
    plan = dict(
        step=step - 1,
        turn_weighting=config.turn_weighting,
        weighting_kwargs=config.turn_weighting_kwargs,
        curriculum=c.curriculum,
        rl=config.rl,
        rl_coef=config.rl_coef,
        advantage=config.rl_advantage,
        distill_coef=config.distill_coef,
        success_only=config.success_only,
        keep_all=config.kl_coef > 0,
    )
    if config.turn_weighting != "sod":  # teacher contexts only for the distilled turns
        samples = plan_turns(trajs, **plan)
        wanted = [
            (s.trajectory, s.index)
            for s in samples
            if s.distill and s.trajectory in own and c.loss.needs_teacher  # sft reads none
        ]
        return samples, _views(c, config, step, trajs, wanted)
    views = _views(c, config, step, trajs, [key for key, _ in mine])
    with c.parallel.gathered(c.policy.model):  # ranks score different numbers of turns
        values = turn_divergences(
            c.policy,
            c.teacher,
            [t for _, t in mine],
            [views[key][0][0] for key, _ in mine],
            micro_batch_size=config.micro_batch_size,
        )
    values = c.parallel.gather(values)  # every turn's, in trajectory order
    divergences = {key: v for (key, _), v in zip(keyed, values)}
    return plan_turns(trajs, divergences=divergences, **plan), views


def _views(
    c: Components, config: TrainConfig, step: int, trajs: list[Trajectory], keys: list[Key]
) -> Views:
    rank = f"-rank{c.parallel.rank}" if c.parallel.active else ""  # ranks fail alone
    failed = Path(config.out_dir) / "rollouts" / f"failed-step-{step}{rank}.jsonl"
    return teacher_views(c.policy, c.provider, trajs, keys, failed_path=failed)


def _update(
    c: Components,
    config: TrainConfig,
    samples: list[TurnSample],
    teacher_prompts: list[Encoded | None],
) -> tuple[dict[str, float], float]:
    """Backward over this rank's samples (synchronised over ranks), clip, optimizer step;
    returns the summed loss terms and the gradient norm before clipping."""
    par = c.parallel
    c.policy.model.train()
    mbs = config.micro_batch_size
    trained = c.policy.forward_model if c.policy.forward_model is not None else c.policy.model
    stats = distill_backward(
        c.policy,
        c.teacher,
        samples,
        teacher_prompts,
        c.loss,
        micro_batch_size=mbs,
        scale=float(par.world),  # DDP averages over ranks; the objective is their sum
        micro_batches=par.max(-(-len(samples) // mbs)) if par.active else None,
        accumulate=(lambda last: par.accumulate(trained, last)) if par.active else None,
        always_teacher=par.sharded,  # FSDP2: every rank runs the same forwards
    )
    params = [p for p in c.policy.model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm or float("inf"))
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP2: a DTensor
    c.optimizer.step()
    c.scheduler.step()
    c.optimizer.zero_grad(set_to_none=True)
    return par.sum(stats), float(norm)


def _rollouts(step: int, c: Components, config: TrainConfig) -> list[Trajectory]:
    """``batch_size`` episodes: ``batch_size / group_size`` tasks, each played ``group_size``
    times (a group shares task and seed; in a mixture each group draws its task). Each rank
    plays its block of tasks; every rank returns the whole batch, in the order of a
    one-process run."""
    groups = config.batch_size // config.group_size
    first = config.seed * 1_000_003 + (step - 1) * groups
    picks = draw(c.tasks, groups, seed=config.seed, step=step)
    seeds = [first + i for i in range(groups) for _ in range(config.group_size)]
    tasks = [picks[i] for i in range(groups) for _ in range(config.group_size)]
    own = _own_trajectories(c.parallel, config)
    seeds, tasks = [seeds[i] for i in own], [tasks[i] for i in own]
    greedy = config.temperature == 0
    sampling = Sampling(config.max_new_tokens, config.temperature or 1.0, config.top_p, greedy)
    k = teacher_episodes(len(seeds), config)
    mine = []
    if k:  # off-policy data: the teacher acts with its privileged view
        with c.teacher.active() as teacher:
            mine += _play(teacher, c, config, step, seeds[:k], tasks[:k], sampling, True)
    if k < len(seeds):
        mine += _play(c.policy, c, config, step, seeds[k:], tasks[k:], sampling, False)
    return c.parallel.gather(mine)


def _play(
    policy: Any,
    c: Components,
    config: TrainConfig,
    step: int,
    seeds: list[int],
    tasks: list[int],
    sampling: Sampling,
    teacher: bool,
) -> list[Trajectory]:
    """One episode per seed in its task's environment, all batched per turn; the teacher
    acts from its task's provider's view, the student samples through the run's engine."""
    prefix = f"s{step}-teacher" if teacher else f"s{step}"
    jobs = []
    for i, (seed, t) in enumerate(zip(seeds, tasks)):
        name = c.tasks[t].name
        provider = c.providers[name] if teacher else None
        group, trajectory = f"step{step}-seed{seed}", f"{prefix}-{i}-{seed}"
        jobs.append(
            Job(
                t,
                seed,
                c.specs[name],
                sampling,
                config.max_turns,
                provider,
                group,
                trajectory,
                name,
            )
        )
    return play(
        policy,
        jobs,
        c.envs,
        slots=len(jobs),
        on_env_error="end",
        leak_keys=c.provider.keys,
        engine=None if teacher else c.engine,
    )


def teacher_episodes(episodes: int, config: TrainConfig) -> int:
    """How many of a rank's ``episodes`` (the first ones) the teacher plays: all with
    ``actor: teacher``, else ``teacher_share`` of them, in whole groups."""
    if config.actor == "teacher":
        return episodes
    groups = episodes // config.group_size
    return round(config.teacher_share * groups) * config.group_size


def _own_trajectories(par: Parallel, config: TrainConfig) -> range:
    """The indices of this rank's trajectories in a step's batch (whole groups)."""
    tasks = par.block(config.batch_size // config.group_size)
    return range(tasks.start * config.group_size, tasks.stop * config.group_size)


def _record(
    step: int,
    c: Components,
    config: TrainConfig,
    trajs: list[Trajectory],
    stats: dict[str, float],
    norm: float,
) -> dict[str, Any]:
    """The step's metrics record."""
    turns = [t for tr in trajs for t in tr.turns]
    tokens = stats["engine_tokens"]
    return {
        "kind": "train",
        "step": step,
        "loss": stats["loss"],
        "rl_loss": stats["rl_loss"],
        "kl": stats["kl"],
        "method": config.method,
        "actor": config.actor,
        "response_tokens": stats["tokens"],
        "rollout_success": sum(tr.success for tr in trajs) / len(trajs),
        "mean_turns": len(turns) / len(trajs),
        "invalid_rate": sum(not t.valid for t in turns) / max(1, len(turns)),
        "env_errors": sum(tr.error is not None for tr in trajs),
        "grad_norm": norm,
        "engine": config.engine,
        "engine_mismatch": stats["mismatch"] / tokens if tokens else None,
        "importance_weight": stats["importance"] / tokens if tokens else None,
        "processes": c.parallel.world,
        "parallel": c.parallel.mode,
        "lr": c.scheduler.get_last_lr()[0],
    }
