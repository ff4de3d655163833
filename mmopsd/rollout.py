"""Rollouts: environments stepped together, one batched generation per turn.

Every turn keeps the exact prompt ids it was sampled from and the exact response ids. A
conversation's ids are built incrementally: the first prompt is the encoded task; each later
prompt is the previous ids plus the sampled response ids plus the ids of the new observation
(:meth:`Policy.encode_continuation`), so no history is ever re-tokenized. With a history
window the head (the task) is kept and the last ``k`` exchanges follow it, each still with its
exact ids.

The ``info`` of a turn is the one that came with its observation (so ``info["privileged"]`` is
about the decision taken in that turn); the environment's answer to the action is stored under
``info["outcome"]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym

from mmopsd.agents.prompting import PromptSpec, observation_images
from mmopsd.checks import accepted_options, check_keys
from mmopsd.engines.base import Engine, Generation
from mmopsd.errors import ConfigError, MmopsdError, UnknownNameError
from mmopsd.policies.base import Policy
from mmopsd.policies.expert import expert_action, expert_ids
from mmopsd.privileged.base import Provider
from mmopsd.privileged.leak import check_no_leak
from mmopsd.types import Encoded, Message, Trajectory, Turn, generated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """How responses are sampled."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False


class RolloutError(MmopsdError):
    """An environment raised in ``step``. ``trajectories`` holds every episode of the batch as
    played so far: finished ones complete, the failing one ending with the failed turn."""

    def __init__(self, message: str, trajectories: list[Trajectory]) -> None:
        super().__init__(message)
        self.trajectories = trajectories


def make_envs(env_id: str, n: int, **kwargs: Any) -> list[gym.Env]:
    """``n`` instances of a registered environment.

    Unknown ids list the known ones; arguments the environment does not take, or rejects,
    raise a :class:`~mmopsd.errors.ConfigError` that lists its arguments.
    """
    import mmopsd.envs  # noqa: F401  (registers mmopsd/* ids)

    if env_id not in gym.registry:
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("mmopsd/")))
        raise UnknownNameError(
            f"unknown environment {env_id!r}; mmopsd registers: {known} "
            "(import the module that registers your own environment first)"
        )
    what = f"environment {env_id!r}"
    creator = gym.spec(env_id).entry_point
    if isinstance(creator, str):
        creator = gym.envs.registration.load_env_creator(creator)
    known_args = accepted_options(creator)
    if known_args is not None:
        check_keys("env_kwargs", what, kwargs, known_args)
    try:
        if n < 1:
            return []
        first = gym.make(env_id, disable_env_checker=True, **kwargs)
        rest = [(env_id, kwargs)] * (n - 1)  # a browser starts in its own thread
        return [first, *_each(_make_one, rest, [concurrent(first)] * len(rest))]
    except (TypeError, ValueError, OSError, ImportError) as err:
        tip = "; check the types in env_kwargs" if isinstance(err, TypeError) else ""
        raise ConfigError(f"cannot make {env_id} with {kwargs}: {err}{tip}") from err


def _make_one(what: tuple[str, dict[str, Any]]) -> gym.Env:
    return gym.make(what[0], disable_env_checker=True, **what[1])


def check_env(env_id: str, split: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Make (and close) one instance of ``env_id`` on ``split``: a wrong id or argument is
    found before any model loads (the error is :func:`make_envs`'s)."""
    make_envs(env_id, 1, split=split, **(env_kwargs or {}))[0].close()


@dataclass
class _Exchange:
    """A generated reply and the observation that answered it, with their exact ids."""

    reply: Message
    user: Message
    ids: Encoded  # reply ids followed by the continuation ids


@dataclass(frozen=True)
class Job:
    """One episode to play: the environment it runs in (a key of the :class:`Stable` that
    lends it), its seed and how the policy talks to it."""

    env: Hashable
    seed: int
    spec: PromptSpec
    sampling: Sampling
    max_turns: int = 1
    provider: Provider | None = None
    group_id: str = ""
    trajectory_id: str = ""
    task: str = ""  # recorded on the trajectory (a training mixture's task name)
    keep_frames: bool = False  # each turn keeps its observation's images (Turn.frames)
    expert: bool = False  # the environment's expert answers, not the policy (expert cloning)


class Stable(Protocol):
    """Lends environments to :func:`play` and takes them back when their episode ends."""

    def lend(self, key: Hashable) -> gym.Env:
        """An environment for ``key`` (a :attr:`Job.env`), free for a new episode."""
        ...

    def take_back(self, key: Hashable, env: gym.Env) -> None:
        """``env`` is free again."""
        ...

    def concurrent(self, key: Hashable) -> bool:
        """Whether environments of ``key`` may be made, reset and stepped in threads
        (:func:`concurrent`)."""
        ...


def concurrent(env: gym.Env) -> bool:
    """Whether ``env`` says its time is spent outside Python, so that several of its kind
    step in threads (``metadata["concurrent_steps"]``: MiniWoB++'s browsers). Others step one
    after another: a native game engine or planner need not be thread-safe."""
    return bool(env.metadata.get("concurrent_steps", False))


@dataclass
class _Episode:
    job: Job
    env: gym.Env
    trajectory: Trajectory
    head_messages: list[Message]
    head: Encoded
    info: dict[str, Any]
    exchanges: list[_Exchange] = field(default_factory=list)
    done: bool = False
    observation: Any = None  # the observation the next turn answers

    @property
    def spec(self) -> PromptSpec:
        return self.job.spec

    def context(self) -> tuple[list[Message], Encoded]:
        """The student's messages and exact prompt ids for the next turn."""
        shown = self.spec.window.select(self.exchanges)
        messages = [*self.head_messages, *(m for x in shown for m in (x.reply, x.user))]
        return messages, Encoded.concat([self.head, *(x.ids for x in shown)])


class _Given:
    """The stable of :func:`rollout`: environment ``i`` plays job ``i``."""

    def __init__(self, envs: Sequence[gym.Env]) -> None:
        self.envs = envs

    def lend(self, key: Hashable) -> gym.Env:
        return self.envs[int(key)]  # type: ignore[call-overload]

    def take_back(self, key: Hashable, env: gym.Env) -> None:
        pass

    def concurrent(self, key: Hashable) -> bool:
        return concurrent(self.envs[int(key)])  # type: ignore[call-overload]


def rollout(
    policy: Policy,
    envs: Sequence[gym.Env],
    seeds: Sequence[int],
    spec: PromptSpec,
    sampling: Sampling,
    *,
    max_turns: int = 1,
    provider: Provider | None = None,
    group_ids: Sequence[str] | None = None,
    id_prefix: str = "traj",
    on_env_error: str = "raise",
    leak_keys: Sequence[str] | None = (),
    engine: Engine | None = None,
) -> list[Trajectory]:
    """Play one episode per environment, all environments batched per turn.

    Args:
        policy: the acting policy.
        envs: environments, one episode each.
        seeds: reset seeds, one per environment.
        spec: the prompt spec (messages, assistant prefix, action parsing, history window).
        sampling: generation settings.
        max_turns: turn cap; an episode still running then is marked truncated.
        provider: if given, the policy acts from the provider's teacher context (used to
            measure teacher-with-privileged-information success; never for the student).
        group_ids: group of each episode (default: ``seed-<seed>``; same task and seed).
        id_prefix: prefix of trajectory ids.
        on_env_error: ``raise`` (a :class:`RolloutError` carrying all trajectories) or
            ``end`` (the failing episode ends there, truncated, with ``error`` set; the others
            go on).
        leak_keys: privileged keys whose content must never be in a student context
            (checked before every generation; ``None`` checks every key, ``()`` none).
        engine: the rollout engine that samples the responses (default: the policy's own,
            :meth:`~mmopsd.policies.base.Policy.default_engine`); its log-probs are kept on
            each turn.
    """
    if len(envs) != len(seeds):
        raise ValueError(f"{len(envs)} environments but {len(seeds)} seeds")
    groups = group_ids or [f"seed-{s}" for s in seeds]
    common = dict(spec=spec, sampling=sampling, max_turns=max_turns, provider=provider)
    jobs = [
        Job(env=i, seed=int(s), group_id=groups[i], trajectory_id=f"{id_prefix}-{i}-{s}", **common)
        for i, s in enumerate(seeds)
    ]
    return play(
        policy,
        jobs,
        _Given(envs),
        slots=len(jobs),
        on_env_error=on_env_error,
        leak_keys=leak_keys,
        engine=engine,
    )


def play(
    policy: Policy,
    jobs: Sequence[Job],
    stable: Stable,
    *,
    slots: int = 16,
    batch_size: int | None = None,
    on_env_error: str = "raise",
    leak_keys: Sequence[str] | None = (),
    engine: Engine | None = None,
    on_done: Callable[[int, Trajectory], None] | None = None,
    concurrent_slots: int | None = None,
) -> list[Trajectory]:
    """Play every job, at most ``slots`` episodes at a time, in any environments, of them
    at most ``concurrent_slots`` (None: no other bound) in environments that step in threads
    (:func:`concurrent`: browsers, each a process of its own).

    Each turn every live episode gets its response from one batched generation (split into
    calls of at most ``batch_size`` prompts, default ``slots``, grouped by answer prefix and
    token budget and sorted by prompt length, so little is padded); the environments then
    step, those that allow it in threads (:func:`concurrent`: a browser's time is spent
    outside Python). A finished
    episode's environment goes back to ``stable`` and the next job starts in its slot (jobs
    with the highest turn cap first).
    Trajectories come back in the order of ``jobs``; ``on_done(index, trajectory)`` is called
    as each ends. ``on_env_error`` and ``leak_keys`` are :func:`rollout`'s.
    """
    if on_env_error not in ("raise", "end"):
        raise ValueError(f"on_env_error must be 'raise' or 'end', got {on_env_error!r}")
    if slots < 1 or (concurrent_slots is not None and concurrent_slots < 1):
        raise ValueError(f"slots must be at least 1, got {slots} and {concurrent_slots}")
    engine = engine or policy.default_engine()
    # Episodes with the most turns start first, so that a batch never ends on one long episode.
    queue = sorted(enumerate(jobs), key=lambda pair: (pair[1].max_turns, -pair[0]))
    live: dict[int, _Episode] = {}
    trajectories: dict[int, Trajectory] = {}
    while queue or live:
        starting = _next_jobs(queue, live, stable, slots, concurrent_slots)
        live.update(_start_all(policy, stable, starting))
        failures = _turn(policy, engine, list(live.values()), batch_size or slots, leak_keys)
        for i in [i for i, ep in live.items() if ep.done]:
            ep = live.pop(i)
            stable.take_back(ep.job.env, ep.env)
            trajectories[i] = ep.trajectory
            if on_done is not None:
                on_done(i, ep.trajectory)
        if failures and on_env_error == "raise":
            trajectories.update({i: ep.trajectory for i, ep in live.items()})
            ordered = [trajectories[i] for i in sorted(trajectories)]
            raise RolloutError(str(failures[0]), ordered) from failures[0].__cause__
    return [trajectories[i] for i in range(len(jobs))]


def _next_jobs(
    queue: list[tuple[int, Job]],
    live: dict[int, _Episode],
    stable: Stable,
    slots: int,
    concurrent_slots: int | None,
) -> list[tuple[int, Job]]:
    """Take the jobs that start now from the end of ``queue``: as many as there are free
    slots, skipping (and leaving queued) those of environments that step in threads while
    ``concurrent_slots`` of them are live."""
    free = slots - len(live)
    if concurrent_slots is None:
        return [queue.pop() for _ in range(min(free, len(queue)))]
    room = concurrent_slots - sum(stable.concurrent(ep.job.env) for ep in live.values())
    taken: list[int] = []
    for at in range(len(queue) - 1, -1, -1):
        if len(taken) == free:
            break
        threaded = stable.concurrent(queue[at][1].env)
        if threaded and room <= 0:
            continue
        room -= threaded
        taken.append(at)
    return [queue.pop(at) for at in taken]  # descending positions: each pop leaves the rest


def _start_all(
    policy: Policy, stable: Stable, starting: list[tuple[int, Job]]
) -> dict[int, _Episode]:
    """Lend and reset an environment for each starting job (concurrently: a browser takes
    its time outside Python), then encode each task."""

    def begin(job: Job) -> tuple[gym.Env, Any, dict[str, Any]]:
        env = stable.lend(job.env)
        if not policy.sees_images and not job.keep_frames:
            skip_images(env)
        obs, info = env.reset(seed=job.seed)
        return env, obs, info

    jobs = [job for _, job in starting]
    begun = _each(begin, jobs, [stable.concurrent(job.env) for job in jobs])
    return {
        i: _episode(policy, job, env, obs, info)
        for (i, job), (env, obs, info) in zip(starting, begun)
    }


def skip_images(env: gym.Env) -> None:
    """Tell ``env`` that its agent reads text alone, through its ``skip_images()`` when any
    of its wrappers offers one (a browser then takes no screenshots)."""
    try:
        skip = env.get_wrapper_attr("skip_images")
    except AttributeError:
        return
    skip()


def _episode(policy: Policy, job: Job, env: gym.Env, obs: Any, info: dict[str, Any]) -> _Episode:
    """A new episode: its task message and exact ids."""
    spec = job.spec
    if not policy.sees_images and not spec.text_only:  # a text model reads the text alone
        spec = dataclasses.replace(spec, text_only=True)
        job = dataclasses.replace(job, spec=spec)
    traj = Trajectory(trajectory_id=job.trajectory_id, group_id=job.group_id, task=job.task)
    head = spec.messages(obs, info)
    enc = policy.encode(head, assistant_prefix=spec.assistant_prefix)
    return _Episode(job, env, traj, head, enc, info, observation=obs)


def _turn(
    policy: Policy,
    engine: Engine,
    active: list[_Episode],
    batch_size: int,
    leak_keys: Sequence[str] | None,
) -> list[_StepFailed]:
    """One turn of every live episode: respond, then step the environments."""
    contexts = [ep.context() for ep in active]
    if leak_keys is None or leak_keys:
        for ep, (msgs, _) in zip(active, contexts):
            check_no_leak(msgs, ep.info.get("privileged", {}), keys=leak_keys)
    acting = [
        (msgs, enc) if ep.job.provider is None else _acting(policy, ep, msgs)
        for ep, (msgs, enc) in zip(active, contexts)
    ]
    model = [i for i, ep in enumerate(active) if not ep.job.expert]
    sampled = iter(
        _sample(policy, engine, [active[i] for i in model], [acting[i] for i in model], batch_size)
        if model
        else []
    )
    responses = [_expert(policy, ep) if ep.job.expert else next(sampled) for ep in active]
    return _advance_all(policy, active, contexts, responses)


def _expert(policy: Policy, ep: _Episode) -> Generation:
    """The expert's next action as the reply (an empty reply where it names none)."""
    action = expert_action(ep.info)
    return Generation(ids=expert_ids(policy, action) if action else [policy.eos_id])


def _each(fn: Callable[[Any], Any], items: list[Any], threaded: list[bool]) -> list[Any]:
    """``fn`` of every item, in order: the items marked ``threaded`` in worker threads (when
    there are several), the others one after another in this thread meanwhile."""
    inline = [i for i, t in enumerate(threaded) if not t]
    if len(items) - len(inline) < 2:
        return [fn(x) for x in items]
    out: list[Any] = [None] * len(items)
    with ThreadPoolExecutor(max_workers=min(len(items) - len(inline), 32)) as pool:
        futures = {i: pool.submit(fn, items[i]) for i, t in enumerate(threaded) if t}
        for i in inline:
            out[i] = fn(items[i])
        for i, future in futures.items():
            out[i] = future.result()
    return out


class _StepFailed(Exception):
    pass


def _sample(
    policy: Policy,
    engine: Engine,
    active: list[_Episode],
    acting: list[tuple[list[Message], Encoded]],
    batch_size: int,
) -> list[Generation]:
    """One generation per acting context, cut after the first end-of-sequence id and at the
    episode's own token budget. Contexts are generated together in calls of at most
    ``batch_size`` that share sampling settings and answer prefix, longest prompts first."""
    order = sorted(
        range(len(active)),
        key=lambda i: (_call_key(active[i]), -len(acting[i][1])),
    )
    out: list[Generation | None] = [None] * len(active)
    for _, members in itertools.groupby(order, key=lambda i: _call_key(active[i])):
        members = list(members)
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            sampling = active[chunk[0]].job.sampling
            gens = engine.generate(
                [acting[i][1] for i in chunk],
                max_new_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                greedy=sampling.greedy,
                conversations=[acting[i][0] for i in chunk],
                assistant_prefix=active[chunk[0]].spec.assistant_prefix,
            )
            for i, gen in zip(chunk, gens):
                ids = policy.cut_at_eos(gen.ids)
                lps = gen.logprobs[: len(ids)] if gen.logprobs is not None else None
                out[i] = Generation(ids, lps, gen.exact)
    return out  # type: ignore[return-value]


def _call_key(ep: _Episode) -> tuple[Any, ...]:
    """Episodes whose responses one generation call can sample."""
    s = ep.job.sampling
    return (s.max_new_tokens, s.temperature, s.top_p, s.greedy, ep.spec.assistant_prefix)


def _advance_all(
    policy: Policy,
    active: list[_Episode],
    contexts: list[tuple[list[Message], Encoded]],
    responses: list[Generation],
) -> list[_StepFailed]:
    """Record every active episode's turn and step its environment (concurrently); an
    environment that raised ends its own episode only (the failures are returned)."""
    recorded = [
        _turn_record(policy, ep, msgs, enc, gen)
        for ep, (msgs, enc), gen in zip(active, contexts, responses)
    ]
    pairs = [(ep, turn) for ep, (turn, _) in zip(active, recorded)]
    stepped = _each(_step, pairs, [concurrent(ep.env) for ep in active])
    failures = []
    for ep, (turn, error), result in zip(active, recorded, stepped):
        if isinstance(result, _StepFailed):  # the other episodes still record this turn
            failures.append(result)
            log.warning("%s; the episode ends here", result)
            continue
        _record(policy, ep, turn, error, result)
    return failures


def _turn_record(
    policy: Policy, ep: _Episode, messages: list[Message], prompt: Encoded, gen: Generation
) -> tuple[Turn, str | None]:
    """The turn of response ``gen``, with its parsed action, appended to the trajectory;
    and why the answer is not an action (None if it is one)."""
    text = policy.decode(gen.ids)
    parsed = ep.spec.parse(text, ep.info)
    turn = Turn(
        messages=messages,
        prompt=prompt,
        response_ids=list(gen.ids),
        response_text=text,
        assistant_prefix=ep.spec.assistant_prefix,
        action=parsed.action,
        valid=parsed.valid,
        sampled_logprobs=gen.logprobs,
        frames=observation_images(ep.observation) if ep.job.keep_frames else [],
    )
    ep.trajectory.turns.append(turn)
    return turn, parsed.error


def _step(pair: tuple[_Episode, Turn]) -> tuple[Any, float, bool, bool, dict] | _StepFailed:
    """Step one episode's environment with its turn's action (runs in a worker thread)."""
    ep, turn = pair
    try:
        return ep.env.step(turn.action)
    except Exception as exc:
        env_id = ep.env.spec.id if ep.env.spec is not None else type(ep.env).__name__
        message = (
            f"environment {env_id} raised {type(exc).__name__}: {exc} in step "
            f"{len(ep.trajectory.turns)} of episode {ep.trajectory.trajectory_id} "
            f"(seed {ep.job.seed}, action {turn.action!r})"
        )
        turn.valid, turn.truncated = False, True
        turn.info = {**ep.info, "outcome": {"error": message}}
        ep.trajectory.error, ep.done = message, True
        failed = _StepFailed(message)
        failed.__cause__ = exc
        return failed


def _record(policy: Policy, ep: _Episode, turn: Turn, error: str | None, result: tuple) -> None:
    """The environment's answer to the turn: reward and end, else the next observation's
    exact ids."""
    obs, reward, terminated, truncated, outcome = result
    last = len(ep.trajectory.turns) >= ep.job.max_turns
    turn.valid = turn.valid and not outcome.get("invalid", False)
    turn.reward = float(reward)
    turn.terminated = bool(terminated)
    turn.truncated = bool(truncated) or (last and not terminated)
    turn.info = {**ep.info, "outcome": outcome}
    if outcome.get("error"):  # the env ended the episode itself (e.g. its browser died)
        ep.trajectory.error = str(outcome["error"])
    if turn.terminated or turn.truncated:
        ep.trajectory.success = bool(outcome.get("success", outcome.get("won", False)))
        ep.done = True
        return
    spec, ids = ep.spec, turn.response_ids
    user = spec.next_message(obs, outcome, error)
    closed = bool(ids) and ids[-1] == policy.eos_id
    follow = policy.encode_continuation([user], spec.assistant_prefix, closed=closed)
    reply = generated(spec.assistant_prefix, turn.response_text, ids)
    reply_ids = Encoded(ids=list(ids), token_types=[0] * len(ids))
    ep.exchanges.append(_Exchange(reply, user, Encoded.concat([reply_ids, follow])))
    ep.info, ep.observation = outcome, obs


def _acting(policy: Policy, ep: _Episode, messages: list[Message]) -> tuple[list[Message], Encoded]:
    """The teacher's acting context (messages and prompt ids) from the episode's provider."""
    privileged = ep.info.get("privileged", {})
    prefix = ep.spec.assistant_prefix
    ctx = ep.job.provider(messages, privileged, assistant_prefix=prefix, episode=None)  # type: ignore[misc]
    return list(ctx.messages), policy.encode(ctx.messages, assistant_prefix=ctx.assistant_prefix)
