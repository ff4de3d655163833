"""Held-out evaluation: success rate with a 95% interval, success per task type, turns,
invalid-action rate, generated tokens per episode, for GUI environments the grounding rate
(clicks inside the target element, as in ScreenSpot) and, where the environment names its
expert's next action, the expert agreement (turns whose action is that action). Evaluation
never calls a provider unless it is asked to evaluate the teacher's view; the expert's action
is read from the environment's info, never shown to the policy."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mmopsd.agents.parsing import normalise
from mmopsd.agents.prompting import PromptSpec
from mmopsd.engines.base import Engine
from mmopsd.envs.processes import process_slots
from mmopsd.evaluation.report import result_table
from mmopsd.evaluation.stable import EnvStable, env_key
from mmopsd.evaluation.stats import wilson_interval
from mmopsd.parallel import Parallel
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import Provider
from mmopsd.rollout import Job, Sampling, play
from mmopsd.types import Trajectory, Turn


@dataclass
class EvalResult:
    """Summary of an evaluation."""

    success: float
    ci_low: float
    ci_high: float
    episodes: int
    invalid_rate: float
    mean_turns: float
    tokens_per_episode: float = 0.0
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    grounding: float | None = None
    progression: float | None = None
    progression_std: float = 0.0
    expert_agreement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)

    def table(self, title: str = "policy") -> str:
        """A Markdown table: overall, then one row per task type."""
        return result_table(self, title)


@dataclass(frozen=True)
class EvalPlan:
    """One environment's share of a batched evaluation (:func:`evaluate_all`).

    ``provider`` evaluates the policy *with* privileged information (the teacher's view);
    leave it None to evaluate the student.
    """

    env_id: str
    spec: PromptSpec
    episodes: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    max_turns: int = 1
    max_new_tokens: int = 64
    provider: Provider | None = None


def evaluate(
    policy: Policy,
    env_id: str,
    spec: PromptSpec,
    *,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    split: str = "test",
    batch_size: int | None = None,
    max_turns: int = 1,
    max_new_tokens: int = 64,
    provider: Provider | None = None,
    seed_offset: int = 0,
    parallel: Parallel | None = None,
    engine: Engine | None = None,
    on_episode: Callable[[int, Trajectory], None] | None = None,
) -> EvalResult:
    """Greedy episodes on seeds ``seed_offset .. seed_offset + episodes - 1`` of ``split``.

    ``provider`` evaluates the policy *with* privileged information (the teacher's view);
    leave it None to evaluate the student. At most ``batch_size`` episodes are played at a
    time (None: :data:`DEFAULT_BATCH_SIZE`, of them at most :func:`browser_slots` in
    browsers). In a data-parallel run (``parallel``) each rank plays a block of the episodes
    and every rank gets the result of all of them. ``engine`` samples instead of the policy's
    own ``generate`` (e.g. vLLM holding the policy's weights). ``on_episode(index,
    trajectory)`` is called as each episode ends (an
    :class:`~mmopsd.evaluation.episodes.EpisodeRecorder` keeps them).
    """
    plan = EvalPlan(
        env_id, spec, episodes, dict(env_kwargs or {}), split, max_turns, max_new_tokens, provider
    )
    return evaluate_all(
        policy,
        [plan],
        batch_size=batch_size,
        seed_offset=seed_offset,
        parallel=parallel,
        engine=engine,
        on_episode=None if on_episode is None else lambda _, i, t: on_episode(i, t),
    )[0]


DEFAULT_BATCH_SIZE = 32  # episodes evaluated at a time when none is asked for


def browser_slots(policy: Policy) -> int | None:
    """How many of the episodes evaluated at a time may hold a browser (an environment
    that steps in threads) when no batch size is asked for: what the environments' process
    pools allow beside this policy (:func:`mmopsd.envs.processes.process_slots`)."""
    try:
        on_cpu = policy.device.type == "cpu"
    except (AttributeError, StopIteration):  # a served model: its server batches
        on_cpu = False
    return process_slots(on_cpu)


def evaluate_all(
    policy: Policy,
    plans: Sequence[EvalPlan],
    *,
    batch_size: int | None = None,
    seed_offset: int = 0,
    parallel: Parallel | None = None,
    engine: Engine | None = None,
    on_result: Callable[[int, EvalResult], None] | None = None,
    on_episode: Callable[[int, int, Trajectory], None] | None = None,
) -> list[EvalResult]:
    """Evaluate several environments together: every live episode of every plan shares one
    batched generation per turn, at most ``batch_size`` episodes (and environments) alive at
    a time (the memory setting; None: :data:`DEFAULT_BATCH_SIZE`, of them at most
    :func:`browser_slots` in browsers). Each plan's episodes play
    seeds ``seed_offset ..`` of its split, as :func:`evaluate` would play them alone.
    ``on_result(index, result)`` is called as each plan's last episode ends; the results come
    back in the order of ``plans``; ``on_episode(plan, index, trajectory)`` as each episode
    ends (in a data-parallel run, this process's episodes).
    """
    browsers = browser_slots(policy) if batch_size is None else None
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    par = parallel or Parallel()
    jobs, owners = _jobs(plans, par, seed_offset, keep_frames=on_episode is not None)
    counts = Counter(owners)
    finished: list[dict[int, Trajectory]] = [{} for _ in plans]
    results: dict[int, EvalResult] = {}

    def done(index: int, traj: Trajectory) -> None:
        n = owners[index]
        finished[n][index] = traj
        if on_episode is not None:
            on_episode(n, index, traj)
        if len(finished[n]) == counts[n] and not par.active:  # ranks gather at the end
            results[n] = summarise([finished[n][i] for i in sorted(finished[n])])
            if on_result is not None:
                on_result(n, results[n])

    with EnvStable(job.env for job in jobs) as stable:
        play(policy, jobs, stable, slots=batch_size, on_env_error="end", engine=engine,
             on_done=done, concurrent_slots=browsers)  # fmt: skip
    for n in range(len(plans)):
        if n not in results:  # data-parallel (every rank gathers), or a plan of no episodes
            mine = [finished[n][i] for i in sorted(finished[n])]
            results[n] = summarise(par.gather(mine))
            if on_result is not None:
                on_result(n, results[n])
    return [results[n] for n in range(len(plans))]


def _jobs(
    plans: Sequence[EvalPlan], par: Parallel, seed_offset: int, keep_frames: bool = False
) -> tuple[list[Job], list[int]]:
    """This process's episodes of every plan (greedy), and the plan each belongs to;
    ``keep_frames``: each turn keeps its observation's images."""
    jobs, owners = [], []
    for n, plan in enumerate(plans):
        sampling = Sampling(max_new_tokens=plan.max_new_tokens, greedy=True)
        key = env_key(plan.env_id, {**plan.env_kwargs, "split": plan.split})
        for i in par.block(plan.episodes):
            seed = seed_offset + i
            jobs.append(
                Job(
                    env=key,
                    seed=seed,
                    spec=plan.spec,
                    sampling=sampling,
                    max_turns=plan.max_turns,
                    provider=plan.provider,
                    group_id=f"seed-{seed}",
                    trajectory_id=f"eval-{i}-{seed}",
                    keep_frames=keep_frames,
                )
            )
            owners.append(n)
    return jobs, owners


def pooled(results: dict[str, EvalResult]) -> EvalResult:
    """One result over several environments' (a training mixture's held-out tasks): success
    and the other rates over all their episodes, ``per_task`` each environment's success
    with its interval. A pool of one result is that result."""
    if len(results) == 1:
        return next(iter(results.values()))
    n = sum(r.episodes for r in results.values())
    wins = round(sum(r.success * r.episodes for r in results.values()))
    turns = sum(r.mean_turns * r.episodes for r in results.values())
    low, high = wilson_interval(wins, n)

    def mean(name: str) -> float | None:
        known = [(getattr(r, name), r.episodes) for r in results.values()]
        known = [(v, e) for v, e in known if v is not None]
        return sum(v * e for v, e in known) / sum(e for _, e in known) if known else None

    return EvalResult(
        success=wins / max(1, n),
        ci_low=low,
        ci_high=high,
        episodes=n,
        invalid_rate=sum(r.invalid_rate * r.mean_turns * r.episodes for r in results.values())
        / max(1.0, turns),
        mean_turns=turns / max(1, n),
        tokens_per_episode=mean("tokens_per_episode") or 0.0,
        per_task={
            name: {
                "success": r.success,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "episodes": float(r.episodes),
            }
            for name, r in results.items()
        },
        grounding=mean("grounding"),
        progression=mean("progression"),
        expert_agreement=mean("expert_agreement"),
    )


def summarise(trajs: list[Trajectory]) -> EvalResult:
    """The evaluation numbers of finished trajectories."""
    wins = sum(t.success for t in trajs)
    turns = [turn for t in trajs for turn in t.turns]
    low, high = wilson_interval(wins, len(trajs))
    groups: dict[str, list[bool]] = defaultdict(list)
    for t in trajs:
        task = t.turns[0].info.get("task_type") if t.turns else None
        if task:
            groups[str(task)].append(t.success)
    per_task = {}
    for task, results in groups.items():
        lo, hi = wilson_interval(sum(results), len(results))
        per_task[task] = {
            "success": sum(results) / len(results),
            "ci_low": lo,
            "ci_high": hi,
            "episodes": float(len(results)),
        }
    n = max(1, len(trajs))
    reached = [_progression(t) for t in trajs]
    reached = [p for p in reached if p is not None]
    progression = sum(reached) / len(reached) if reached else None
    spread = (
        math.sqrt(sum((p - progression) ** 2 for p in reached) / len(reached)) if reached else 0.0
    )
    hits = [g for t in turns if isinstance(g := t.info.get("outcome", {}).get("grounded"), bool)]
    return EvalResult(
        success=wins / n,
        ci_low=low,
        ci_high=high,
        episodes=len(trajs),
        invalid_rate=sum(not t.valid for t in turns) / max(1, len(turns)),
        mean_turns=len(turns) / n,
        tokens_per_episode=sum(t.response_tokens for t in trajs) / n,
        per_task=per_task,
        progression=progression,
        progression_std=spread,
        grounding=sum(hits) / len(hits) if hits else None,
        expert_agreement=expert_agreement(turns),
    )


def expert_agreement(turns: list[Turn]) -> float | None:
    """The share of turns whose action does what the expert's next action for that state
    does (``info["privileged"]["next_action"]``), over the turns where the environment names
    one; None where it names none.

    An action agrees when its text is the expert's (compared as the action parser compares
    text: :func:`~mmopsd.agents.parsing.normalise`), or, where the expert clicks, when the
    environment says the click hit the expert's target (``outcome["grounded"]``: a click
    inside the element's box, or a click on the element by its id). A dense measure of how
    close a policy is to the expert when success is rare (BabyAI's bot, ALFWorld's and
    Sokoban's plans, MiniWoB++'s target element).
    """
    scored = [
        (t, expert)
        for t in turns
        if isinstance(expert := t.info.get("privileged", {}).get("next_action"), str)
    ]
    if not scored:
        return None
    return sum(_agrees(t, expert) for t, expert in scored) / len(scored)


def _agrees(turn: Turn, expert: str) -> bool:
    if turn.action is None:
        return False
    if isinstance(turn.action, str) and normalise(turn.action) == normalise(expert):
        return True
    clicks = normalise(expert).startswith("click")
    return clicks and turn.info.get("outcome", {}).get("grounded") is True


def _progression(traj: Trajectory) -> float | None:
    """The progression the environment reported at the episode's last turn (Crafter's
    achievements unlocked / 22), if it reports one."""
    for turn in reversed(traj.turns):
        value = turn.info.get("outcome", {}).get("progression")
        if value is not None:
            return float(value)
    return None
