"""The training loop: rollout -> teacher context -> score both sides -> loss -> step -> log.

Read :func:`train` top to bottom; :func:`build` turns the config into components and
:func:`train_step` is one optimizer step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from mmopsd import checkpoint, extra_evals
from mmopsd.agents.prompting import PromptSpec, prompt_for
from mmopsd.checks import check_loss, check_token_weighting, check_turn_weighting, needs_ids
from mmopsd.config import TrainConfig, import_modules
from mmopsd.curriculum import TemporalCurriculum
from mmopsd.distill import LossSpec, distill_backward, old_logprobs, turn_divergences
from mmopsd.engines.base import Engine
from mmopsd.engines.build import build_engine, check_engine
from mmopsd.errors import ConfigError, MmopsdError
from mmopsd.evaluation import EvalResult, evaluate
from mmopsd.losses import get as get_loss
from mmopsd.losses.weighting import WEIGHTINGS
from mmopsd.metrics import MetricsLog, plot_curve
from mmopsd.parallel import Parallel, full_state, init, load_full_state, shutdown_on_exit
from mmopsd.policies.base import Policy
from mmopsd.policies.loading import load_policy, resolve_device
from mmopsd.policies.vision import freeze_vision_tower
from mmopsd.privileged.base import Episode, Provider, build_provider
from mmopsd.privileged.leak import check_no_leak
from mmopsd.resume import load_newest, newest_sound
from mmopsd.rollout import Sampling, make_envs, rollout
from mmopsd.runtime import tune_cpu_allocator
from mmopsd.teachers import Teacher, build_teacher
from mmopsd.turn_plan import TurnSample, plan_turns
from mmopsd.turn_weighting import TURN_WEIGHTINGS
from mmopsd.types import Encoded, Trajectory

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything a run is built from."""

    policy: Policy
    teacher: Teacher
    provider: Provider
    spec: PromptSpec
    loss: LossSpec
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    envs: list
    engine: Engine | None = None  # None: the policy's own generate
    curriculum: TemporalCurriculum | None = None
    teacher_eval: dict[str, Any] | None = None  # reused while the teacher is static
    parallel: Parallel = dataclasses.field(default_factory=Parallel)


@dataclass
class RunSummary:
    """Before/after numbers of a run."""

    steps: int
    before: EvalResult
    after: EvalResult
    teacher: EvalResult | None
    seconds: float
    out_dir: Path

    def table(self) -> str:
        """A Markdown table of held-out success."""
        rows = [("student before training", self.before), ("student after training", self.after)]
        if self.teacher is not None:
            rows.append(("teacher with privileged info", self.teacher))
        lines = [
            f"| policy | held-out success (n={self.after.episodes}) | 95% interval | avg turns "
            "| invalid |",
            "|---|---|---|---|---|",
        ]
        for name, r in rows:
            interval = f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
            lines.append(
                f"| {name} | {r.success:.3f} | {interval} | {r.mean_turns:.2f} "
                f"| {r.invalid_rate:.3f} |"
            )
        return "\n".join(lines)


def build(
    config: TrainConfig, policy: Policy | None = None, parallel: Parallel | None = None
) -> Components:
    """Turn the config into components (``policy`` may be given, e.g. a tiny test model);
    ``parallel`` is this process's place in a data-parallel run."""
    par = parallel or Parallel()
    tasks = config.batch_size // config.group_size
    if tasks % par.world:
        raise ConfigError(
            f"{tasks} tasks per step (batch_size / group_size) cannot be shared by {par.world} "
            "processes: make it a multiple of the number of processes (groups never split)"
        )
    torch.manual_seed(config.seed)
    if resolve_device(config.device).type == "cpu":
        tune_cpu_allocator()
    # Everything a config names is checked before the model loads: a mistake costs a second.
    import_modules(config.imports)
    provider = build_provider(config.provider, **config.provider_kwargs)
    loss_fn = get_loss(config.loss)
    check_loss(config.loss, loss_fn, config.loss_kwargs)
    if config.token_weighting != "none":
        weighting = WEIGHTINGS.get(config.token_weighting)
        check_token_weighting(config.token_weighting, weighting, config.weighting_kwargs)
    weigh_turns = TURN_WEIGHTINGS.get(config.turn_weighting)
    check_turn_weighting(config.turn_weighting, weigh_turns, config.turn_weighting_kwargs)
    check_engine(config.engine, config.engine_kwargs)
    per_rank = config.batch_size // par.world
    envs = make_envs(config.env, per_rank, split=config.train_split, **config.env_kwargs)
    make_envs(config.env, 1, split=config.eval_split, **config.env_kwargs)[0].close()
    for kind in ("ood", "retain"):  # every evaluated environment is checked before loading
        for extra in extra_evals.parse(kind, getattr(config, kind), config):
            make_envs(extra.env, 1, split=extra.split, **extra.env_kwargs)[0].close()
    policy = policy or load_policy(config.model, dtype=config.dtype, device=config.device)  # type: ignore[arg-type]
    if config.lora:
        from mmopsd.lora import apply_lora

        policy.model = apply_lora(
            policy.model, r=config.lora_r, alpha=config.lora_alpha, targets=config.lora_targets
        )
    if config.freeze_vision:
        freeze_vision_tower(policy.model)
    teacher = build_teacher(config.teacher, policy, **config.teacher_kwargs)
    if hasattr(provider, "bind"):
        provider.bind(policy, config.out_dir)
    policy.forward_model = par.wrap(policy.model)  # FSDP2 shards in place: before the optimizer
    if par.sharded:
        teacher.rebind()  # a teacher that follows the student reads the sharded parameters
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, config.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    loss = LossSpec(
        fn=loss_fn,
        options=dict(config.loss_kwargs),
        weighting=config.token_weighting,
        weighting_options=dict(config.weighting_kwargs),
        needs_ids=needs_ids(loss_fn),
        importance_cap=config.importance_cap,
        needs_teacher=getattr(loss_fn, "needs_teacher", True),
        clip_eps=config.clip_eps,
        kl_coef=config.kl_coef,
    )
    engine = _engine(config, policy, par)
    spec = prompt_for(config.env)
    if config.history is not None:
        spec = dataclasses.replace(spec, history=config.history)
    curriculum = (
        TemporalCurriculum(config.curriculum_every, config.curriculum_start)
        if config.curriculum_every
        else None
    )
    return Components(
        policy, teacher, provider, spec, loss, optimizer, scheduler, envs, engine, curriculum,
        parallel=par,
    )  # fmt: skip


def _engine(config: TrainConfig, policy: Policy, par: Parallel) -> Engine | None:
    """The configured rollout engine (None for plain ``hf``: the policy samples itself)."""
    if config.engine == "hf" and not config.engine_kwargs:
        return None
    engine = build_engine(
        config.engine,
        policy,
        student_model=config.model,
        processes=par.world,
        **config.engine_kwargs,
    )
    if not engine.follows_weights and par.main:
        log.warning(
            "engine %s: the served model is not updated by this run, so rollouts grow "
            "off-policy as the student trains (corrected by truncated importance weights "
            "only where the server returns log-probs); evaluations use the student itself",
            config.engine,
        )
    return engine


def train_step(step: int, c: Components, config: TrainConfig) -> dict[str, Any]:
    """One optimizer step: on-policy rollouts, per-turn teacher contexts, turn-level
    distillation (plus the optional RL term), update."""
    start = time.perf_counter()
    par = c.parallel
    with par.gathered(c.policy.model):  # FSDP2: whole weights while generating
        trajs = _rollouts(step, c, config)
    if config.save_rollouts and par.main:  # every rank holds the whole batch
        _save_rollouts(Path(config.out_dir) / "rollouts" / f"step-{step}.jsonl", trajs)
    keyed = [((i, k), t) for i, tr in enumerate(trajs) for k, t in enumerate(tr.turns)]
    keyed = [(key, t) for key, t in keyed if t.response_ids]
    own = _own_trajectories(c.parallel, config)  # this rank trains on its own episodes
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
    if config.turn_weighting == "sod":  # SOD weights need every turn's teacher divergence
        views = _views_or_save(c, config, step, trajs, [key for key, _ in mine])
        with par.gathered(c.policy.model):  # ranks score different numbers of turns
            values = turn_divergences(
                c.policy,
                c.teacher,
                [t for _, t in mine],
                [views[key][0][0] for key, _ in mine],
                micro_batch_size=config.micro_batch_size,
            )
        values = c.parallel.gather(values)  # every turn's, in trajectory order
        divergences = {key: v for (key, _), v in zip(keyed, values)}
        samples = plan_turns(trajs, divergences=divergences, **plan)
    else:  # teacher contexts only for the turns that are distilled
        samples = plan_turns(trajs, **plan)
        teacher_read = c.loss.needs_teacher  # sft reads no teacher logits: no teacher views
        distilled = [
            (s.trajectory, s.index)
            for s in samples
            if s.distill and s.trajectory in own and teacher_read
        ]
        views = _views_or_save(c, config, step, trajs, distilled)
    if hasattr(c.provider, "observe"):
        with par.gathered(c.policy.model):  # a provider may generate (skill summaries)
            c.provider.observe(trajs, step)
    planned = samples
    samples, teacher_prompts = _expand_views([s for s in samples if s.trajectory in own], views)
    if c.engine is not None:
        c.engine.sleep()  # the trainer takes the accelerator memory
    if config.ppo_epochs > 1:  # the ratio of later passes is clipped against these
        with par.gathered(c.policy.model):
            olds = old_logprobs(c.policy, samples, micro_batch_size=config.micro_batch_size)
        samples = [dataclasses.replace(s, old_logprobs=o) for s, o in zip(samples, olds)]
    stats, norm = _update(c, config, samples, teacher_prompts)
    for _ in range(config.ppo_epochs - 1):  # more passes over the same batch
        _update(c, config, samples, teacher_prompts)
    if c.engine is not None:
        c.engine.sync(c.policy.model)  # the next rollouts sample the updated student
    c.teacher.update(step)
    all_turns = [t for tr in trajs for t in tr.turns]
    return {
        "kind": "train",
        "step": step,
        "loss": stats["loss"],
        "rl_loss": stats["rl_loss"],
        "kl": stats["kl"],
        "method": config.method,
        "actor": config.actor,
        "response_tokens": stats["tokens"],
        "distilled_turns": sum(1 for s in planned if s.distill),
        "rollout_success": sum(tr.success for tr in trajs) / len(trajs),
        "mean_turns": len(all_turns) / len(trajs),
        "invalid_rate": sum(not t.valid for t in all_turns) / max(1, len(all_turns)),
        "env_errors": sum(tr.error is not None for tr in trajs),
        "grad_norm": norm,
        "engine": config.engine,
        "engine_mismatch": _ratio(stats["mismatch"], stats["engine_tokens"]),
        "importance_weight": _ratio(stats["importance"], stats["engine_tokens"]),
        "processes": c.parallel.world,
        "parallel": c.parallel.mode,
        "lr": c.scheduler.get_last_lr()[0],
        "seconds": time.perf_counter() - start,
    }


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


def _ratio(total: float, count: float) -> float | None:
    return total / count if count else None


def _own_trajectories(par: Parallel, config: TrainConfig) -> range:
    """The indices of this rank's trajectories in a step's batch (whole groups)."""
    tasks = par.block(config.batch_size // config.group_size)
    return range(tasks.start * config.group_size, tasks.stop * config.group_size)


def _rollouts(step: int, c: Components, config: TrainConfig) -> list[Trajectory]:
    """``batch_size`` episodes: ``batch_size / group_size`` tasks, each played ``group_size``
    times (a group shares task and seed). Each rank plays its block of tasks; every rank
    returns the whole batch, in the order of a one-process run."""
    tasks = config.batch_size // config.group_size
    first = config.seed * 1_000_003 + (step - 1) * tasks
    seeds = [first + i for i in range(tasks) for _ in range(config.group_size)]
    seeds = [seeds[i] for i in _own_trajectories(c.parallel, config)]
    greedy = config.temperature == 0
    sampling = Sampling(config.max_new_tokens, config.temperature or 1.0, config.top_p, greedy)
    kw = dict(
        max_turns=config.max_turns,
        group_ids=[f"step{step}-seed{s}" for s in seeds],
        id_prefix=f"s{step}",
        on_env_error="end",
        leak_keys=getattr(c.provider, "keys", None),
    )
    if config.actor == "teacher":  # off-policy data: the teacher acts with its privileged view
        with c.teacher.active() as teacher:
            mine = rollout(teacher, c.envs, seeds, c.spec, sampling, provider=c.provider, **kw)
    else:
        mine = rollout(c.policy, c.envs, seeds, c.spec, sampling, engine=c.engine, **kw)
    return c.parallel.gather(mine)


def _views_or_save(
    c: Components,
    config: TrainConfig,
    step: int,
    trajs: list[Trajectory],
    keys: list[tuple[int, int]],
) -> dict[tuple[int, int], list[tuple[Encoded, float]]]:
    """Teacher views of the given turns; on a provider error the step's trajectories are
    saved first and the error says where."""
    groups: dict[str, list[Trajectory]] = {}
    for tr in trajs:
        groups.setdefault(tr.group_id, []).append(tr)
    try:
        return {key: _teacher_views(c, trajs, groups, key) for key in keys}
    except MmopsdError as err:
        rank = f"-rank{c.parallel.rank}" if c.parallel.active else ""  # ranks fail alone
        path = Path(config.out_dir) / "rollouts" / f"failed-step-{step}{rank}.jsonl"
        _save_rollouts(path, trajs)
        note = f"{err} (the {len(trajs)} trajectories of step {step} are saved in {path})"
        raise type(err)(note) from err


def _teacher_views(
    c: Components,
    trajs: list[Trajectory],
    groups: dict[str, list[Trajectory]],
    key: tuple[int, int],
) -> list[tuple[Encoded, float]]:
    """The teacher prompt(s) of one turn, with their view weights; the student's context is
    checked for privileged content once the provider has run."""
    i, k = key
    turn = trajs[i].turns[k]
    episode = Episode(
        trajectory=trajs[i],
        turn_index=k,
        siblings=tuple(t for t in groups[trajs[i].group_id] if t is not trajs[i]),
    )
    ctx = c.provider(
        turn.messages, turn.privileged, assistant_prefix=turn.assistant_prefix, episode=episode
    )
    check_no_leak(turn.messages, turn.privileged, keys=getattr(c.provider, "keys", None))
    return [
        (c.policy.encode(v.messages, assistant_prefix=v.assistant_prefix), w)
        for v, w in ctx.all_views()
    ]


def _expand_views(
    samples: list[TurnSample], views: dict[tuple[int, int], list[tuple[Encoded, float]]]
) -> tuple[list[TurnSample], list[Encoded | None]]:
    """One sample per teacher view (distillation scaled by the view's weight; the RL term,
    which needs no teacher, stays on the first)."""
    out: list[TurnSample] = []
    prompts: list[Encoded | None] = []
    for s in samples:
        if not s.distill:
            out.append(s)
            prompts.append(None)
            continue
        if (s.trajectory, s.index) not in views:  # a loss that reads no teacher (sft)
            out.append(s)
            prompts.append(None)
            continue
        for n, (prompt, weight) in enumerate(views[(s.trajectory, s.index)]):
            rl = s.rl if n == 0 else 0.0
            out.append(dataclasses.replace(s, distill=s.distill * weight, rl=rl))
            prompts.append(prompt)
    return out, prompts


def _save_rollouts(path: Path, trajs: list[Trajectory]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in trajs))


def run_eval(step: int, c: Components, config: TrainConfig, *, teacher: bool) -> dict[str, Any]:
    """Held-out student success (and teacher-with-privileged-info success)."""
    kw = dict(
        episodes=config.eval_episodes,
        env_kwargs=config.env_kwargs,
        split=config.eval_split,
        max_turns=config.max_turns,
        max_new_tokens=config.max_new_tokens,
        seed_offset=10_000_000,
        parallel=c.parallel,
    )
    c.policy.model.eval()
    follows = c.engine is not None and c.engine.follows_weights and c.engine.name != "hf"
    engine = c.engine if follows else None  # vLLM holds the student's weights: faster
    record: dict[str, Any] = {"kind": "eval", "step": step}
    with c.parallel.gathered(c.policy.model):  # FSDP2: whole weights while generating
        student = evaluate(c.policy, config.env, c.spec, engine=engine, **kw)
        record.update(student_success=student.success, student=student.to_dict())
        static = c.teacher.static and getattr(c.provider, "static", True)
        if teacher and (c.teacher_eval is None or not static):
            with c.teacher.active() as tp:
                result = evaluate(tp, config.env, c.spec, provider=c.provider, **kw)
            c.teacher_eval = result.to_dict()
    if teacher and c.teacher_eval is not None:
        record.update(teacher_success=c.teacher_eval["success"], teacher=dict(c.teacher_eval))
    if step in (0, config.steps):  # out-of-distribution and retained tasks: before and after
        for kind in ("ood", "retain"):
            if getattr(config, kind):
                record[kind] = _extra_evals(c, config, kind)
    return record


def _extra_evals(c: Components, config: TrainConfig, kind: str) -> dict[str, Any]:
    """The student's results on the config's ``ood`` or ``retain`` evaluations."""
    out = {}
    for extra in extra_evals.parse(kind, getattr(config, kind), config):
        spec = prompt_for(extra.env)
        if config.history is not None:
            spec = dataclasses.replace(spec, history=config.history)
        with c.parallel.gathered(c.policy.model):
            result = evaluate(
                c.policy,
                extra.env,
                spec,
                episodes=extra.episodes,
                env_kwargs=extra.env_kwargs,
                split=extra.split,
                max_turns=extra.max_turns,
                max_new_tokens=config.max_new_tokens,
                seed_offset=10_000_000,
                parallel=c.parallel,
            )
        out[extra.name] = result.to_dict()
    return out


def train(
    config: TrainConfig, *, policy: Policy | None = None, progress: bool = True
) -> RunSummary:
    """Run self-distillation as configured; resumes from the latest checkpoint if any.

    Launched by ``torchrun``/``accelerate launch`` with ``parallel: ddp``, every process
    runs this; rank 0 alone writes the run directory and shows progress.
    """
    par = init(config.parallel, config.dist_timeout)
    with shutdown_on_exit(par):
        return _train(config, policy, progress and par.main, par)


def _train(config: TrainConfig, policy: Policy | None, progress: bool, par: Parallel) -> RunSummary:
    began = time.perf_counter()
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out} is a file; set out_dir to a directory")
    ckpt_root = out / "checkpoints"
    found = newest_sound(ckpt_root) if config.resume else None
    if found is not None and checkpoint.step_of(found) >= config.steps:
        done = _finished(config, found, out)
        if done is not None:
            _say(progress, f"{out} is finished (checkpoint {found.name}); nothing to do")
            return done
    c = build(config, policy, par)  # checks everything first: a bad config never touches out_dir
    if par.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    log = MetricsLog(out / "metrics.jsonl", enabled=par.main)
    last_eval = None
    if found is not None:
        put = None
        if par.sharded:
            put = lambda w, o: load_full_state(par, c.policy.model, c.optimizer, w, o)  # noqa: E731
        found, restored, teacher_state = load_newest(
            ckpt_root, found, c.policy.model, c.optimizer, put
        )
        c.teacher.load_state_dict(teacher_state)
        c.scheduler.last_epoch = restored.step
        first, before = restored.step + 1, restored.extra["before"]
        if par.main:
            log.truncate_after(restored.step)
        last_eval = _eval_at(log.read(), restored.step)
        _say(progress, f"resumed from {found} (step {restored.step})")
        _sync_engine(c)
    else:
        if par.main:
            log.path.unlink(missing_ok=True)
        if hasattr(c.provider, "reset"):  # a provider with state starts empty on a fresh run
            c.provider.reset()
        _sync_engine(c)
        before = run_eval(0, c, config, teacher=config.eval_teacher)
        log.write(before)
        first, last_eval = 1, before
    bar = tqdm(
        range(first, config.steps + 1),
        desc="self-distillation",
        disable=not progress,
        initial=first - 1,
        total=config.steps,
    )
    for step in bar:
        record = train_step(step, c, config)
        log.write(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}", success=f"{record['rollout_success']:.2f}")
        if (config.eval_every and step % config.eval_every == 0) or step == config.steps:
            last_eval = run_eval(step, c, config, teacher=config.eval_teacher)
            log.write(last_eval)
            _say(
                progress,
                f"step {step}: held-out student success {last_eval['student_success']:.3f}",
            )
        if (config.save_every and step % config.save_every == 0) or step == config.steps:
            weights, optimizer_state = full_state(par, c.policy.model, c.optimizer)  # collective
            if par.main:
                checkpoint.save(
                    ckpt_root,
                    step,
                    c.policy.model,
                    c.optimizer,
                    teacher=c.teacher.state_dict(),
                    extra={"before": before},
                    keep=config.keep_checkpoints,
                    weights=weights,
                    optimizer_state=optimizer_state,
                )
    if last_eval is None or last_eval["step"] != config.steps:
        last_eval = run_eval(config.steps, c, config, teacher=config.eval_teacher)
        log.write(last_eval)
    summary = _summarise(config, before, last_eval, time.perf_counter() - began, out)
    if par.main:
        if not any(r["kind"] == "summary" and r["step"] == config.steps for r in log.read()):
            log.write({"kind": "summary", "step": config.steps, **_summary_record(summary)})
        (out / "summary.json").write_text(json.dumps(_summary_record(summary), indent=2))
        title = f"{config.env} · {config.model} · {config.loss}"
        plot_curve(log.read(), out / "curve.png", title=title)
    par.barrier()  # the run directory is complete before any rank returns
    return summary


def _sync_engine(c: Components) -> None:
    """The engine samples the weights training starts from."""
    if c.engine is not None:
        c.engine.sync(c.policy.model)


def _eval_at(records: list[dict[str, Any]], step: int) -> dict[str, Any] | None:
    """The last evaluation record at ``step``, if the metrics hold one."""
    evals = [r for r in records if r.get("kind") == "eval" and r.get("step") == step]
    return evals[-1] if evals else None


def _finished(config: TrainConfig, found: Path, out: Path) -> RunSummary | None:
    """The summary of a run whose last checkpoint is at or past ``steps`` and whose metrics
    hold its final evaluation and summary (None if either is missing: the run completes
    them once, without training)."""
    records = MetricsLog(out / "metrics.jsonl").read()
    step = checkpoint.step_of(found)
    after = _eval_at(records, step)
    done = [r for r in records if r.get("kind") == "summary" and r.get("step") == step]
    meta = json.loads((found / "trainer_state.json").read_text())
    if after is None or not done or "before" not in meta:
        return None
    finished = dataclasses.replace(config, steps=step)
    return _summarise(finished, meta["before"], after, done[-1]["seconds"], out)


def _summarise(
    config: TrainConfig, before: dict, after: dict, seconds: float, out: Path
) -> RunSummary:
    teacher = after.get("teacher") or before.get("teacher")
    return RunSummary(
        steps=config.steps,
        before=EvalResult(**before["student"]),
        after=EvalResult(**after["student"]),
        teacher=EvalResult(**teacher) if teacher else None,
        seconds=seconds,
        out_dir=out,
    )


def _summary_record(s: RunSummary) -> dict[str, Any]:
    return {
        "student_success_before": s.before.success,
        "student_success_after": s.after.success,
        "teacher_success": s.teacher.success if s.teacher else None,
        "episodes": s.after.episodes,
        "seconds": round(s.seconds, 1),
    }


def _say(progress: bool, text: str) -> None:
    if progress:
        tqdm.write(text)
