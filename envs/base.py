"""The base of mmopsd's agent environments: text actions, admissible commands, privileged
information in ``info``, invalid actions answered with feedback, a step cap.

Subclass :class:`AgentEnv` and implement four methods to add an environment::

    class GuessEnv(AgentEnv):
        def new_task(self, options):           # draw a task with self.np_random
            self.secret = int(self.np_random.integers(1, 10))
            return "Guess my number between 1 and 9."
        def admissible(self):                    # None accepts any text
            return [str(i) for i in range(1, 10)]
        def apply(self, action):                 # action is already admissible
            won = int(action) == self.secret
            return Outcome("Right!" if won else "Wrong.", float(won), won, won)
        def privileged(self):                    # what only the teacher may see
            return {"hint": f"the number is {self.secret}"}

Then register it: ``gymnasium.register("mypkg/Guess-v0", entry_point="mypkg:GuessEnv")``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces
from mmopsd.agents.parsing import match_admissible
from mmopsd.envs.seeds import offset_seed

TEXT_MAX = 16384
PRINTABLE = frozenset(string.printable)


def text_space(max_length: int = TEXT_MAX) -> spaces.Text:
    """A printable-text space (gymnasium's default charset has no spaces or punctuation)."""
    return spaces.Text(max_length=max_length, charset=string.printable)


@dataclass
class Outcome:
    """What an admissible action did.

    Attributes:
        observation: the next observation.
        reward: the reward of this step.
        terminated: the task ended (won or lost).
        success: the task was accomplished.
        feedback: a short sentence on the result, also given in ``info["feedback"]``.
    """

    observation: Any
    reward: float = 0.0
    terminated: bool = False
    success: bool = False
    feedback: str = ""


class AgentEnv(gym.Env[Any, str]):
    """A gymnasium environment for text-acting agents.

    ``reset`` and ``step`` return gymnasium's 2- and 5-tuples. Every ``info`` holds
    ``privileged`` (a dict only the teacher sees), ``admissible_commands`` when the
    environment lists them, and after a step ``success``, ``won``, ``invalid`` and
    ``feedback``. An action that is not admissible never raises: the observation says what
    was wrong, ``info["invalid"]`` is True, the reward is ``-invalid_penalty`` and the step
    counts toward ``max_steps``, after which the episode is truncated.

    Args:
        max_steps: steps before truncation.
        invalid_penalty: subtracted from the reward of an invalid action.
        render_mode: ``ansi`` (the last observation's text) or None.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    free_text: ClassVar[bool] = False  # True: any text with a printable character is an answer

    def __init__(
        self, max_steps: int = 50, invalid_penalty: float = 0.0, render_mode: str | None = None
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps = max_steps
        self.invalid_penalty = invalid_penalty
        self.render_mode = render_mode
        self.observation_space = text_space()
        self.action_space = text_space()
        self._steps = 0
        self._last: Any = ""

    # ------------------------------------------------------------------ to implement
    def new_task(self, options: dict[str, Any] | None) -> Any:
        """Start a task drawn with ``self.np_random``; return the first observation."""
        raise NotImplementedError

    def apply(self, action: str) -> Outcome:
        """Carry out an admissible ``action``."""
        raise NotImplementedError

    def privileged(self) -> dict[str, Any]:
        """Privileged information about the current state (hint, plan, answer, ...)."""
        return {}

    def admissible(self) -> list[str] | None:
        """The actions allowed now, or None when any text is allowed."""
        return None

    def canonical(self, action: str) -> str | None:
        """The admissible spelling of ``action``, or None if it is not a valid action (an
        empty action never is)."""
        if not action.strip():
            return None
        parsed = match_admissible(action, self.admissible())
        return parsed.action if parsed.valid else None

    @property
    def seed_stream(self) -> str:
        """The split whose seed stream episodes draw from (:func:`~mmopsd.envs.seeds.
        offset_seed`): the environment's ``split``."""
        return getattr(self, "split", "train")

    # ---------------------------------------------------------------------- gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a new task (each split's episodes draw from their own seed stream)."""
        if seed is not None:
            seed = offset_seed(seed, self.seed_stream)
        super().reset(seed=seed)
        self._steps = 0
        self._last = self.new_task(options)
        return self._last, self._info()

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Act; invalid actions get feedback, never an exception."""
        self._steps += 1
        text = str(action)
        choice = self.canonical(text) if has_text(text) else None
        if choice is None:
            outcome = Outcome(self.invalid_observation(text), -self.invalid_penalty)
            outcome.feedback = f"'{quote(text)}' is not a valid action."
        else:
            outcome = self.apply(choice)
        truncated = not outcome.terminated and self._steps >= self.max_steps
        info = self._info()
        info.update(
            action=choice,
            invalid=choice is None,
            success=bool(outcome.success),
            won=bool(outcome.success),
            feedback=outcome.feedback,
        )
        self._last = outcome.observation
        return outcome.observation, float(outcome.reward), bool(outcome.terminated), truncated, info

    def render(self) -> str | None:
        """The last observation's text (``ansi`` mode)."""
        if self.render_mode != "ansi":
            return None
        return self._last if isinstance(self._last, str) else str(self._last.get("text", ""))

    # ----------------------------------------------------------------------- helpers
    def invalid_observation(self, action: str) -> Any:
        """The observation after an invalid action: what was wrong, what is allowed."""
        allowed = self.admissible()
        text = f"Nothing happens: '{quote(action)}' is not a valid action here."
        if allowed:
            text += " Valid actions: " + ", ".join(allowed) + "."
        return text

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"privileged": self.privileged()}
        allowed = self.admissible()
        if allowed is not None:
            info["admissible_commands"] = list(allowed)
        return info


def quote(text: str, n: int = 60) -> str:
    """``text`` for an observation that echoes an action: whitespace collapsed, characters
    outside the printable-text space shown as ``?``, at most ``n`` characters."""
    text = "".join(c if c in PRINTABLE else "?" for c in " ".join(str(text).split()))
    return text if len(text) <= n else text[: n - 3] + "..."


def has_text(action: str) -> bool:
    """True when ``action`` holds something besides whitespace and control characters."""
    return any(c.isprintable() and not c.isspace() for c in action)
