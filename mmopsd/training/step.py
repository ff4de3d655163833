"""One optimizer step: on-policy rollouts, per-turn teacher contexts, turn-level distillation
(plus the optional RL term), update."""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from mmopsd.config import TrainConfig
from mmopsd.methods import Batch, Player
from mmopsd.methods.turn_plan import TurnSample
from mmopsd.parallel import Parallel
from mmopsd.rollout import Job, Sampling, play
from mmopsd.training.components import Components
from mmopsd.training.distill import distill_backward, old_logprobs, turn_divergences
from mmopsd.training.mixture import draw
from mmopsd.training.views import Key, Views, expand_views, save_rollouts, teacher_views
from mmopsd.types import Encoded, Trajectory


def train_step(step: int, c: Components, config: TrainConfig) -> dict[str, Any]:
    """One optimizer step; returns its metrics record."""
    start = time.perf_counter()
    par = c.parallel
    with par.gathered(c.policy.model):  # FSDP2: whole weights while generating
        trajs = _rollouts(step, c, config)
    if config.rollout.save and par.main:  # every rank holds the whole batch
        save_rollouts(Path(config.run.out_dir) / "rollouts" / f"step-{step}.jsonl", trajs)
    planned, views = _plan(step, c, config, trajs)
    with par.gathered(c.policy.model):  # a provider may generate (skill summaries)
        c.provider.observe(trajs, step)
    own = _own_trajectories(par, config)  # this rank trains on its own episodes
    samples, teacher_prompts = expand_views([s for s in planned if s.trajectory in own], views)
    c.engine.sleep()  # the trainer takes the accelerator memory
    passes = c.method.passes
    if passes > 1:  # the ratio of later passes is clipped against these
        with par.gathered(c.policy.model):
            olds = old_logprobs(
                c.policy, samples, micro_batch_size=config.optimizer.micro_batch_size
            )
        samples = [dataclasses.replace(s, old_logprobs=o) for s, o in zip(samples, olds)]
    stats, norm = _update(c, config, samples, teacher_prompts)
    for _ in range(passes - 1):  # more passes over the same batch
        _update(c, config, samples, teacher_prompts)
    c.engine.sync(c.policy.model)  # the next rollouts sample the updated student
    c.teacher.update(step)
    record = _record(step, c, config, trajs, stats, norm)
    record["distilled_turns"] = sum(1 for s in planned if s.distill)
    own = len(_own_trajectories(par, config))
    record["teacher_episodes"] = par.world * c.method.players(own).count("teacher")
    record["seconds"] = time.perf_counter() - start
    return record


def _plan(
    step: int, c: Components, config: TrainConfig, trajs: list[Trajectory]
) -> tuple[list[TurnSample], Views]:
    """The method's turn plan of the batch and the teacher views of this rank's turns that
    read the teacher (every turn's first where the plan reads their divergences)."""
    own = _own_trajectories(c.parallel, config)
    if not c.method.reads_divergences:  # teacher contexts only for the turns that read them
        samples = c.method.plan(Batch(trajs, step, policy=c.policy))
        wanted = [
            (s.trajectory, s.index)
            for s in samples
            if s.trajectory in own and c.method.reads_teacher(s)
        ]
        return samples, _views(c, config, step, trajs, wanted)
    keyed = [((i, k), t) for i, tr in enumerate(trajs) for k, t in enumerate(tr.turns)]
    keyed = [(key, t) for key, t in keyed if t.response_ids]
    mine = [(key, t) for key, t in keyed if key[0] in own]
    views = _views(c, config, step, trajs, [key for key, _ in mine])
    with c.parallel.gathered(c.policy.model):  # ranks score different numbers of turns
        values = turn_divergences(
            c.policy,
            c.teacher,
            [t for _, t in mine],
            [views[key][0][0] for key, _ in mine],
            micro_batch_size=config.optimizer.micro_batch_size,
        )
    values = c.parallel.gather(values)  # every turn's, in trajectory order
    divergences = {key: v for (key, _), v in zip(keyed, values)}
    return c.method.plan(Batch(trajs, step, divergences, c.policy)), views


def _views(
    c: Components, config: TrainConfig, step: int, trajs: list[Trajectory], keys: list[Key]
) -> Views:
    rank = f"-rank{c.parallel.rank}" if c.parallel.active else ""  # ranks fail alone
    failed = Path(config.run.out_dir) / "rollouts" / f"failed-step-{step}{rank}.jsonl"
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
    mbs = config.optimizer.micro_batch_size
    trained = c.policy.forward_model if c.policy.forward_model is not None else c.policy.model
    stats = distill_backward(
        c.policy,
        c.teacher,
        samples,
        teacher_prompts,
        c.objective,
        micro_batch_size=mbs,
        scale=float(par.world),  # DDP averages over ranks; the objective is their sum
        micro_batches=par.max(-(-len(samples) // mbs)) if par.active else None,
        accumulate=(lambda last: par.accumulate(trained, last)) if par.active else None,
        always_teacher=par.sharded,  # FSDP2: every rank runs the same forwards
    )
    params = [p for p in c.policy.model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, config.optimizer.max_grad_norm or float("inf"))
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
    groups = config.optimizer.batch_size // config.method.group_size
    first = config.run.seed * 1_000_003 + (step - 1) * groups
    picks = draw(c.tasks, groups, seed=config.run.seed, step=step)
    seeds = [first + i for i in range(groups) for _ in range(config.method.group_size)]
    tasks = [picks[i] for i in range(groups) for _ in range(config.method.group_size)]
    own = _own_trajectories(c.parallel, config)
    seeds, tasks = [seeds[i] for i in own], [tasks[i] for i in own]
    greedy = config.rollout.temperature == 0
    sampling = Sampling(
        config.rollout.max_new_tokens,
        config.rollout.temperature or 1.0,
        config.rollout.top_p,
        greedy,
    )
    players = c.method.players(len(seeds))
    played: dict[int, Trajectory] = {}
    for player in ("teacher", "expert", "student"):  # off-policy: teacher's view, expert
        chosen = [i for i, p in enumerate(players) if p == player]
        if chosen:
            episodes = [(seeds[i], tasks[i]) for i in chosen]
            played.update(zip(chosen, _play(player, c, config, step, episodes, sampling)))
    return c.parallel.gather([played[i] for i in range(len(seeds))])


def _play(
    player: Player,
    c: Components,
    config: TrainConfig,
    step: int,
    episodes: list[tuple[int, int]],
    sampling: Sampling,
) -> list[Trajectory]:
    """One episode per ``(seed, task)``, in its task's environment,
    all batched per turn; the teacher acts from its task's provider's view, the student
    samples through the run's engine, the expert answers with its next action."""
    teacher = player == "teacher"
    prefix = f"s{step}" if player == "student" else f"s{step}-{player}"
    jobs = [
        Job(
            env=t,
            seed=seed,
            spec=c.specs[c.tasks[t].name],
            sampling=sampling,
            max_turns=config.rollout.max_turns,
            provider=c.providers[c.tasks[t].name] if teacher else None,
            group_id=f"step{step}-seed{seed}",
            trajectory_id=f"{prefix}-{i}-{seed}",
            task=c.tasks[t].name,
            expert=player == "expert",
        )
        for i, (seed, t) in enumerate(episodes)
    ]
    with c.teacher.active() if teacher else nullcontext(c.policy) as policy:
        return play(
            policy,
            jobs,
            c.envs,
            slots=len(jobs),
            on_env_error="end",
            leak_keys=c.provider.keys,
            engine=c.engine if player == "student" else None,
        )


def _own_trajectories(par: Parallel, config: TrainConfig) -> range:
    """The indices of this rank's trajectories in a step's batch (whole groups)."""
    tasks = par.block(config.optimizer.batch_size // config.method.group_size)
    return range(tasks.start * config.method.group_size, tasks.stop * config.method.group_size)


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
        **c.method.describe(),
        "response_tokens": stats["tokens"],
        "rollout_success": sum(tr.success for tr in trajs) / len(trajs),
        "mean_turns": len(turns) / len(trajs),
        "invalid_rate": sum(not t.valid for t in turns) / max(1, len(turns)),
        "env_errors": sum(tr.error is not None for tr in trajs),
        "grad_norm": norm,
        "engine": config.rollout.engine,
        "engine_mismatch": stats["mismatch"] / tokens if tokens else None,
        "importance_weight": stats["importance"] / tokens if tokens else None,
        "processes": c.parallel.world,
        "parallel": c.parallel.mode,
        "lr": c.scheduler.get_last_lr()[0],
    }
