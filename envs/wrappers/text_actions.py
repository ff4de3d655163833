"""``TextActions``: the agent's text becomes the wrapped environment's action."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs
from mmopsd.agents.parsing import match_admissible
from mmopsd.envs.base import has_text, quote, text_space


class TextActions(gym.Wrapper, RecordConstructorArgs):
    """Map text to the wrapped environment's actions; answer invalid text with feedback.

    Give either named actions (``["left", "right"]`` for ``Discrete(2)``, or a mapping from
    name to action) or a ``parser`` that turns text into an action or None (for structured
    actions such as ``click(x, y)``). Named actions are listed in
    ``info["admissible_commands"]`` and matched after normalisation ("Go forward." is
    ``go forward``). Text that is no action sets ``info["invalid"]`` and ``info["feedback"]``
    and, unless a ``noop`` action is given, does not step the wrapped environment: the last
    observation comes back with the feedback in front of its text. Every call counts toward
    ``max_steps``, after which the episode is truncated.

    Args:
        env: the environment to wrap (its observations should be text or ``{"text", ...}``).
        actions: named actions: a sequence (name -> its index) or a mapping (name -> action).
        parser: text -> action, or None when the text is no action.
        noop: an action of the wrapped environment to play on invalid text (default: none).
        max_steps: truncate after this many calls (None: only the wrapped env truncates).
        invalid_penalty: subtracted from the reward of an invalid action.
    """

    def __init__(
        self,
        env: gym.Env,
        actions: Sequence[str] | Mapping[str, Any] | None = None,
        *,
        parser: Callable[[str], Any] | None = None,
        noop: Any = None,
        max_steps: int | None = None,
        invalid_penalty: float = 0.0,
    ) -> None:
        if (actions is None) == (parser is None):
            raise ValueError("TextActions needs either named actions or a parser, not both")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        RecordConstructorArgs.__init__(
            self, actions=actions, parser=parser, noop=noop, max_steps=max_steps,
            invalid_penalty=invalid_penalty,
        )  # fmt: skip
        gym.Wrapper.__init__(self, env)
        if actions is not None and not isinstance(actions, Mapping):
            actions = {name: i for i, name in enumerate(actions)}
        self.named = dict(actions) if actions is not None else None
        self.parser = parser
        self.noop = noop
        self.max_steps = max_steps
        self.invalid_penalty = invalid_penalty
        self.action_space = text_space()
        self.free_text = False  # actions have a grammar: names or the parser's
        self._steps = 0
        self._last: tuple[Any, dict[str, Any]] = ("", {})

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the wrapped environment and the step count."""
        obs, info = self.env.reset(**kwargs)
        self._steps = 0
        info = self._listed(info)
        self._last = (obs, info)
        return obs, info

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Play the action the text names, or answer with feedback."""
        self._steps += 1
        text = str(action)
        name, chosen = self._choose(text)
        if name is None:
            obs, reward, terminated, truncated, info = self._invalid(text)
        else:
            obs, reward, terminated, truncated, info = self.env.step(chosen)
            info = {**info, "invalid": False, "action": name}
        if self.max_steps is not None and self._steps >= self.max_steps and not terminated:
            truncated = True
        info = self._listed(info)
        self._last = (obs, info)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _choose(self, text: str) -> tuple[str | None, Any]:
        """The action's name (its canonical text) and the wrapped action, or (None, None)."""
        if not has_text(text):
            return None, None
        if self.named is not None:
            parsed = match_admissible(text, list(self.named))
            return (parsed.action, self.named[parsed.action]) if parsed.valid else (None, None)
        first = text.strip().split("\n")[0]
        chosen = self.parser(first)
        return (first, chosen) if chosen is not None else (None, None)

    def _invalid(self, text: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        allowed = f" Valid actions: {', '.join(self.named)}." if self.named else ""
        feedback = f"'{quote(text)}' is not a valid action.{allowed}"
        if self.noop is not None:
            obs, reward, terminated, truncated, info = self.env.step(self.noop)
        else:
            obs, info = copy.deepcopy(self._last[0]), self._last[1]  # new data every call
            reward, terminated, truncated = 0.0, False, False
            info = {k: copy.deepcopy(v) for k, v in info.items() if k == "privileged"}
        info = {**info, "invalid": True, "action": None, "feedback": feedback}
        return with_note(obs, feedback), reward - self.invalid_penalty, terminated, truncated, info

    def _listed(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.named is not None:
            info = {**info, "admissible_commands": list(self.named)}
        return info


def with_note(observation: Any, note: str) -> Any:
    """``observation`` with ``note`` in front of its text (a string or ``{"text": ...}``)."""
    if isinstance(observation, str):
        return f"{note}\n{observation}"
    if isinstance(observation, Mapping) and "text" in observation:
        return {**observation, "text": f"{note}\n{observation['text']}"}
    return observation
