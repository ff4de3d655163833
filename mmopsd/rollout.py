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
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from mmopsd.agents.prompting import PromptSpec
from mmopsd.checks import accepted_options, check_keys
from mmopsd.engines.base import Engine, Generation
from mmopsd.errors import ConfigError, MmopsdError, UnknownNameError
from mmopsd.policies.base import Policy
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
        return [gym.make(env_id, disable_env_checker=True, **kwargs) for _ in range(n)]
    except (TypeError, ValueError, OSError, ImportError) as err:
        tip = "; check the types in env_kwargs" if isinstance(err, TypeError) else ""
        raise ConfigError(f"cannot make {env_id} with {kwargs}: {err}{tip}") from err


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


@dataclass
class _Episode:
    env: gym.Env
    seed: int
    trajectory: Trajectory
    head_messages: list[Message]
    head: Encoded
    info: dict[str, Any]
    exchanges: list[_Exchange] = field(default_factory=list)
    done: bool = False

    def context(self, spec: PromptSpec) -> tuple[list[Message], Encoded]:
        """The student's messages and exact prompt ids for the next turn."""
        shown = spec.window.select(self.exchanges)
        messages = [*self.head_messages, *(m for x in shown for m in (x.reply, x.user))]
        return messages, Encoded.concat([self.head, *(x.ids for x in shown)])


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
    if on_env_error not in ("raise", "end"):
        raise ValueError(f"on_env_error must be 'raise' or 'end', got {on_env_error!r}")
    if not policy.sees_images and not spec.text_only:  # a text model reads the text alone
        spec = dataclasses.replace(spec, text_only=True)
    engine = engine or policy.default_engine()
    groups = group_ids or [f"seed-{s}" for s in seeds]
    episodes = [
        _reset(policy, spec, env, int(seed), groups[i], f"{id_prefix}-{i}-{seed}")
        for i, (env, seed) in enumerate(zip(envs, seeds))
    ]
    for turn_index in range(max_turns):
        if not (active := [ep for ep in episodes if not ep.done]):
            break
        contexts = [ep.context(spec) for ep in active]
        responses = _respond(policy, engine, spec, sampling, active, contexts, provider, leak_keys)
        last = turn_index == max_turns - 1
        failures = _advance_all(policy, spec, active, contexts, responses, last=last)
        if failures and on_env_error == "raise":
            trajectories = [ep.trajectory for ep in episodes]
            raise RolloutError(str(failures[0]), trajectories) from failures[0].__cause__
    return [ep.trajectory for ep in episodes]


def _respond(
    policy: Policy,
    engine: Engine,
    spec: PromptSpec,
    sampling: Sampling,
    active: list[_Episode],
    contexts: list[tuple[list[Message], Encoded]],
    provider: Provider | None,
    leak_keys: Sequence[str] | None,
) -> list[Generation]:
    """One response per active episode: the student's contexts are checked for leaks first;
    with a provider the policy acts from the teacher's context instead."""
    if leak_keys is None or leak_keys:
        for ep, (msgs, _) in zip(active, contexts):
            check_no_leak(msgs, ep.info.get("privileged", {}), keys=leak_keys)
    acting = [
        (msgs, enc) if provider is None else _acting(policy, spec, msgs, ep.info, provider)
        for ep, (msgs, enc) in zip(active, contexts)
    ]
    return _sample(policy, engine, acting, sampling, spec.assistant_prefix)


def _reset(
    policy: Policy, spec: PromptSpec, env: gym.Env, seed: int, group_id: str, trajectory_id: str
) -> _Episode:
    """Reset ``env`` on ``seed``; the episode's task message and its exact ids."""
    obs, info = env.reset(seed=seed)
    traj = Trajectory(trajectory_id=trajectory_id, group_id=group_id)
    head = spec.messages(obs, info)
    enc = policy.encode(head, assistant_prefix=spec.assistant_prefix)
    return _Episode(env, seed, traj, head, enc, info)


def _advance_all(
    policy: Policy,
    spec: PromptSpec,
    active: list[_Episode],
    contexts: list[tuple[list[Message], Encoded]],
    responses: list[Generation],
    *,
    last: bool,
) -> list[_StepFailed]:
    """Step every active episode with its response; an environment that raised ends its own
    episode only (the failures are returned)."""
    failures = []
    for ep, (msgs, enc), gen in zip(active, contexts, responses):
        try:
            _advance(policy, spec, ep, msgs, enc, gen, last)
        except _StepFailed as failed:  # the other episodes still record this turn
            failures.append(failed)
            log.warning("%s; the episode ends here", failed)
    return failures


class _StepFailed(Exception):
    pass


def _sample(
    policy: Policy,
    engine: Engine,
    acting: list[tuple[list[Message], Encoded]],
    sampling: Sampling,
    assistant_prefix: str,
) -> list[Generation]:
    """One generation per acting context from ``engine``, cut after the first
    end-of-sequence id."""
    out = engine.generate(
        [enc for _, enc in acting],
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        greedy=sampling.greedy,
        conversations=[msgs for msgs, _ in acting],
        assistant_prefix=assistant_prefix,
    )
    cut = [policy.cut_at_eos(gen.ids) for gen in out]
    return [
        Generation(ids, gen.logprobs[: len(ids)] if gen.logprobs is not None else None, gen.exact)
        for ids, gen in zip(cut, out)
    ]


def _advance(
    policy: Policy,
    spec: PromptSpec,
    ep: _Episode,
    messages: list[Message],
    prompt: Encoded,
    gen: Generation,
    last: bool,
) -> None:
    """Step one episode with the action of response ``gen`` and record the turn."""
    ids = gen.ids
    text = policy.decode(ids)
    parsed = spec.parse(text, ep.info)
    turn = Turn(
        messages=messages,
        prompt=prompt,
        response_ids=list(ids),
        response_text=text,
        assistant_prefix=spec.assistant_prefix,
        action=parsed.action,
        valid=parsed.valid,
        sampled_logprobs=gen.logprobs,
    )
    ep.trajectory.turns.append(turn)
    try:
        obs, reward, terminated, truncated, outcome = ep.env.step(parsed.action)
    except Exception as exc:
        env_id = ep.env.spec.id if ep.env.spec is not None else type(ep.env).__name__
        message = (
            f"environment {env_id} raised {type(exc).__name__}: {exc} in step "
            f"{len(ep.trajectory.turns)} of episode {ep.trajectory.trajectory_id} "
            f"(seed {ep.seed}, action {parsed.action!r})"
        )
        turn.valid, turn.truncated = False, True
        turn.info = {**ep.info, "outcome": {"error": message}}
        ep.trajectory.error, ep.done = message, True
        raise _StepFailed(message) from exc
    turn.valid = parsed.valid and not outcome.get("invalid", False)
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
    user = spec.next_message(obs, outcome, parsed.error)
    closed = bool(ids) and ids[-1] == policy.eos_id
    follow = policy.encode_continuation([user], spec.assistant_prefix, closed=closed)
    reply = generated(spec.assistant_prefix, text, ids)
    reply_ids = Encoded(ids=list(ids), token_types=[0] * len(ids))
    ep.exchanges.append(_Exchange(reply, user, Encoded.concat([reply_ids, follow])))
    ep.info = outcome


def _acting(
    policy: Policy,
    spec: PromptSpec,
    messages: list[Message],
    info: dict[str, Any],
    provider: Provider,
) -> tuple[list[Message], Encoded]:
    """The teacher's acting context (messages and prompt ids) from the provider."""
    privileged = info.get("privileged", {})
    ctx = provider(messages, privileged, assistant_prefix=spec.assistant_prefix, episode=None)
    return list(ctx.messages), policy.encode(ctx.messages, assistant_prefix=ctx.assistant_prefix)
