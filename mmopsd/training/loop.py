"""The training loop: rollout -> teacher context -> score both sides -> loss -> step -> log.

Read :func:`train` top to bottom: resume or start, the loop with its evaluation and save
cadence, the summary. :func:`~mmopsd.training.components.build` turns the config into
components and :func:`~mmopsd.training.step.train_step` is one optimizer step.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmopsd.config import TrainConfig
from mmopsd.config.writing import dump
from mmopsd.envs.processes import owned_by_run
from mmopsd.errors import ConfigError
from mmopsd.evaluation.report import plot_run
from mmopsd.parallel import Parallel, full_model_state, full_state, init, shutdown_on_exit
from mmopsd.policies.base import Policy
from mmopsd.tracking import open_trackers
from mmopsd.training import checkpoint, resume
from mmopsd.training.components import Components, build, prepared
from mmopsd.training.evals import run_eval
from mmopsd.training.metrics import MetricsLog
from mmopsd.training.mixture import train_tasks
from mmopsd.training.step import train_step
from mmopsd.training.summary import RunSummary, summarise_run

__all__ = ["Components", "RunSummary", "build", "run_eval", "train", "train_step"]


def train(
    config: TrainConfig, *, policy: Policy | None = None, progress: bool = True
) -> RunSummary:
    """Run self-distillation as configured; resumes from the latest checkpoint if any.

    Launched by ``torchrun``/``accelerate launch`` with ``run.parallel: ddp``, every process
    runs this; rank 0 alone writes the run directory and shows progress.
    """
    config = prepared(config)  # the method's fields filled in, as config.yaml records them
    par = init(config.run.parallel, config.run.dist_timeout)
    with shutdown_on_exit(par), owned_by_run(), ExitStack() as stack:  # browsers end with it
        began, out = time.perf_counter(), _run_dir(config)
        show = progress and par.main
        found = resume.newest_sound(out / "checkpoints") if config.run.resume else None
        if found is not None and checkpoint.step_of(found) >= config.optimizer.steps:
            done = resume.finished(found, out)
            if done is not None:
                _say(show, f"{out} is finished (checkpoint {found.name}); nothing to do")
                return done
        c = build(config, policy, par)  # checks everything first: a bad config never touches out
        log = _open_metrics(config, out, par, found)
        stack.callback(log.trackers.close)  # trackers finish even when the run fails
        if found is not None:
            found, last, before, last_eval = resume.restore(c, out / "checkpoints", found, log)
            _say(show, f"resumed from {found} (step {last})")
            c.engine.sync(c.policy.model)  # the engine samples the weights training resumes from
        else:
            last, before = 0, _start(c, config, log)
            last_eval = before
        bar = tqdm(range(last + 1, config.optimizer.steps + 1), desc="self-distillation",
                   disable=not show, initial=last, total=config.optimizer.steps)  # fmt: skip
        for step in bar:
            record = train_step(step, c, config)
            log.write(record)
            bar.set_postfix(
                loss=f"{record['loss']:.4f}", success=f"{record['rollout_success']:.2f}"
            )
            if _due(config.evaluation.every, step, config.optimizer.steps):
                last_eval = run_eval(step, c, config, teacher=config.evaluation.teacher)
                log.write(last_eval)
                _say(
                    show,
                    f"step {step}: held-out student success {last_eval['student_success']:.3f}",
                )
            if _due(config.run.save_every, step, config.optimizer.steps):
                _save(c, config, out, step, before)
        if last_eval is None or last_eval["step"] != config.optimizer.steps:
            last_eval = run_eval(
                config.optimizer.steps, c, config, teacher=config.evaluation.teacher
            )
            log.write(last_eval)
        summary = summarise_run(
            config.optimizer.steps, before, last_eval, time.perf_counter() - began, out
        )
        _finish(config, summary, log, par)
        log.trackers.image(config.optimizer.steps, "curve", out / "curve.png")
        _export(c, config, summary, par)
        return summary


def _run_dir(config: TrainConfig) -> Path:
    out = Path(config.run.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"run.out_dir {out} is a file; set run.out_dir to a directory")
    return out


def _open_metrics(config: TrainConfig, out: Path, par: Parallel, found: Path | None) -> MetricsLog:
    """The run's metrics log, logging to the run's trackers; rank 0 writes the run's config
    beside it. ``found`` is the checkpoint a resumed run continues from."""
    if not par.main:
        return MetricsLog(out / "metrics.jsonl", enabled=False)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump(config.to_dict()))
    resume_step = None if found is None else checkpoint.step_of(found)
    trackers = open_trackers(config.run.report_to, out, config.to_dict(), resume_step)
    return MetricsLog(out / "metrics.jsonl", trackers=trackers)


def _start(c: Components, config: TrainConfig, log: MetricsLog) -> dict[str, Any]:
    """A fresh run: empty metrics and provider state, the first evaluation (returned)."""
    if c.parallel.main:
        log.path.unlink(missing_ok=True)
    c.provider.reset()  # a provider with state starts empty on a fresh run
    c.engine.sync(c.policy.model)  # the engine samples the weights training starts from
    before = run_eval(0, c, config, teacher=config.evaluation.teacher)
    log.write(before)
    return before


def _due(every: int, step: int, last: int) -> bool:
    """Whether a periodic event (evaluation, checkpoint) falls on ``step``."""
    return bool(every and step % every == 0) or step == last


def _save(c: Components, config: TrainConfig, out: Path, step: int, before: dict) -> None:
    """A checkpoint of step ``step`` (collective: every rank takes part in gathering)."""
    weights, optimizer_state = full_state(c.parallel, c.policy.model, c.optimizer)
    if c.parallel.main:
        checkpoint.save(
            out / "checkpoints",
            step,
            c.policy.model,
            c.optimizer,
            teacher=c.teacher.state_dict(),
            extra={"before": before},
            keep=config.run.keep_checkpoints,
            weights=weights,
            optimizer_state=optimizer_state,
        )


def _finish(config: TrainConfig, summary: RunSummary, log: MetricsLog, par: Parallel) -> None:
    """The summary record, ``summary.json`` and the learning curve; every rank waits until
    the run directory is complete."""
    if par.main:
        out, record = summary.out_dir, summary.record()
        if not any(
            r["kind"] == "summary" and r["step"] == config.optimizer.steps for r in log.read()
        ):
            log.write({"kind": "summary", "step": config.optimizer.steps, **record})
        (out / "summary.json").write_text(json.dumps(record, indent=2))
        plot_run(log.read(), out / "curve.png", title=run_title(config))
    par.barrier()


def _export(c: Components, config: TrainConfig, summary: RunSummary, par: Parallel) -> None:
    """The final model as a transformers folder, ``out_dir/model`` (``run.export``); a
    sharded model's tensors are gathered whole on rank 0 first (every rank takes part)."""
    from mmopsd.export import export_policy, model_card
    from mmopsd.policies.packaged import hub_id

    mode = config.run.export
    if mode == "none":
        return
    state = full_model_state(par, c.policy.model)
    if par.main:
        base = hub_id(config.model.name)
        card = model_card(
            config, base_id=base, step=summary.steps, vision=c.policy.sees_images, lora=mode,
            evaluation=summary.table() + f"\n\nAfter step {summary.steps}.",
        )  # fmt: skip
        export_policy(
            c.policy, summary.out_dir / "model", card=card, config_yaml=dump(config.to_dict()),
            lora=mode, base_id=base, overwrite=True, state_dict=state,
        )  # fmt: skip
    par.barrier()


def run_title(config: TrainConfig) -> str:
    """A run's curve title: its environment (or its mixture's), model and loss."""
    tasks = train_tasks(config)
    where = tasks[0].env if len(tasks) == 1 else f"{len(tasks)} tasks ({tasks[0].env}, ...)"
    return f"{where} · {config.model.name} · {config.method.loss}"


def _say(show: bool, text: str) -> None:
    if show:
        tqdm.write(text)
