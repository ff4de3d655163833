"""Rollouts: environments stepped together, one batched generation per turn.

Every turn keeps the exact prompt ids it was sampled from and the exact response ids. The
``info`` of a turn is the one that came with its observation (so ``info["privileged"]`` is
about the decision taken in that turn); the environment's answer to the action is stored under
``info["outcome"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from mmopsd.agents.prompting import PromptSpec
from mmopsd.policies.base import Policy
from mmopsd.privileged.base import Provider
from mmopsd.types import Encoded, Message, Trajectory, Turn


@dataclass(frozen=True)
class Sampling:
    """How responses are sampled."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False


def make_envs(env_id: str, n: int, **kwargs: Any) -> list[gym.Env]:
    """``n`` instances of a registered environment (unknown ids list the known ones)."""
    import mmopsd.envs  # noqa: F401  (registers mmopsd/* ids)

    if env_id not in gym.registry:
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("mmopsd/")))
        raise gym.error.NameNotFound(
            f"unknown environment {env_id!r}; mmopsd registers: {known} "
            "(import the module that registers your own environment first)"
        )
    return [gym.make(env_id, disable_env_checker=True, **kwargs) for _ in range(n)]


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
) -> list[Trajectory]:
    """Play one episode per environment, all environments batched per turn.

    Args:
        policy: the acting policy.
        envs: environments, one episode each.
        seeds: reset seeds, one per environment.
        spec: the prompt spec (messages, assistant prefix, action extraction).
        sampling: generation settings.
        max_turns: turn cap; an episode still running then is marked truncated.
        provider: if given, the policy acts from the provider's teacher context (used to
            measure teacher-with-privileged-information success; never for the student).
        group_ids: group of each episode (default: ``seed-<seed>``).
        id_prefix: prefix of trajectory ids.
    """
    if len(envs) != len(seeds):
        raise ValueError(f"{len(envs)} environments but {len(seeds)} seeds")
    trajs, histories, infos = [], [], []
    for i, (env, seed) in enumerate(zip(envs, seeds)):
        obs, info = env.reset(seed=int(seed))
        gid = group_ids[i] if group_ids is not None else f"seed-{seed}"
        trajs.append(Trajectory(trajectory_id=f"{id_prefix}-{i}-{seed}", group_id=gid))
        histories.append(spec.messages(obs))
        infos.append(info)
    active = list(range(len(envs)))
    for turn_index in range(max_turns):
        if not active:
            break
        contexts = [_context(histories[i], infos[i], spec, provider) for i in active]
        prompts = [policy.encode(c, assistant_prefix=spec.assistant_prefix) for c in contexts]
        responses = policy.generate(
            prompts,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            greedy=sampling.greedy,
        )
        still = []
        for i, prompt, ids in zip(active, prompts, responses):
            turn, obs = _play(envs[i], policy, spec, histories[i], infos[i], prompt, ids)
            turn.truncated = turn.truncated or (turn_index == max_turns - 1 and not turn.terminated)
            trajs[i].turns.append(turn)
            if turn.terminated or turn.truncated:
                outcome = turn.info["outcome"]
                trajs[i].success = bool(outcome.get("success", outcome.get("won", False)))
                continue
            histories[i] = [
                *histories[i],
                Message("assistant", turn.action or ""),
                *[m for m in spec.messages(obs) if m.role == "user"],
            ]
            infos[i] = turn.info["outcome"]
            still.append(i)
        active = still
    return trajs


def _play(
    env: gym.Env,
    policy: Policy,
    spec: PromptSpec,
    history: list[Message],
    info: dict[str, Any],
    prompt: Encoded,
    ids: list[int],
) -> tuple[Turn, Any]:
    """Step ``env`` with the action of response ``ids``; the turn and the next observation."""
    text = policy.decode(ids)
    action = spec.action(text)
    obs, reward, terminated, truncated, outcome = env.step(action)
    turn = Turn(
        messages=list(history),
        prompt=prompt,
        response_ids=list(ids),
        response_text=text,
        assistant_prefix=spec.assistant_prefix,
        action=action,
        valid=not outcome.get("invalid", False),
        reward=float(reward),
        terminated=bool(terminated),
        truncated=bool(truncated),
        info={**info, "outcome": outcome},
    )
    return turn, obs


def _context(
    history: list[Message], info: dict[str, Any], spec: PromptSpec, provider: Provider | None
) -> list[Message]:
    if provider is None:
        return history
    privileged = info.get("privileged", {})
    return provider(history, privileged, assistant_prefix=spec.assistant_prefix).messages
