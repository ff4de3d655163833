"""KeyDoor: you hold a coloured key; one of several coloured doors opens with it.

A fixed hidden rule maps each key colour to a door colour (a derangement drawn from
``rule_seed``: no key opens the door of its own colour). The student sees only the key and the
doors; the privileged hint names the right door. The rule is a shared latent the student can
internalise, so self-distillation with the hint works.

Distractor doors never have the key's own colour, so "avoid your key's colour" is no
shortcut; with the default four colours no door-colour preference order solves every episode
either: only the key -> door rule does.

Splits: with ``split_by="seed"`` (default) ``train`` and ``test`` draw episodes from disjoint
seed streams of the same distribution (held-out episodes). With ``split_by="combination"``
they never share a (key, set of doors) combination, a harder out-of-distribution split.
"""

from __future__ import annotations

import hashlib
import random
import string
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")
TEST_SEED_OFFSET = 1 << 40
TEXT = spaces.Text(max_length=1024, charset=string.printable)


def derangement(colours: tuple[str, ...], seed: int) -> dict[str, str]:
    """A key -> door map in which no key opens the door of its own colour."""
    rng = random.Random(seed)
    while True:
        doors = list(colours)
        rng.shuffle(doors)
        if all(k != d for k, d in zip(colours, doors)):
            return dict(zip(colours, doors))


class KeyDoorEnv(gym.Env[str, str]):
    """Pick the door that your key opens.

    Observation: a text describing the key and the doors. Action: text naming a door colour
    (e.g. ``"blue"`` or ``"blue door"``). Reward 1 for the right door, else 0; the episode
    ends after one choice. ``info["privileged"]`` holds ``hint`` (a sentence naming the door)
    and ``answer`` (the door colour); ``info["feedback"]`` explains a wrong or invalid choice.

    Args:
        colours: the palette of keys and doors.
        n_doors: doors per episode (the right one plus distractors).
        rule_seed: seed of the hidden key -> door rule.
        split: ``train`` or ``test``.
        split_by: ``seed`` (disjoint seed streams) or ``combination`` (disjoint key/door sets).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        colours: tuple[str, ...] | list[str] = COLOURS[:4],
        n_doors: int = 2,
        rule_seed: int = 0,
        split: str = "train",
        split_by: str = "seed",
        render_mode: str | None = None,
    ) -> None:
        self.colours = tuple(colours)
        if len(self.colours) < 3 or not 2 <= n_doors <= len(self.colours) - 1:
            raise ValueError(
                f"need at least 3 colours and 2 <= n_doors <= {len(self.colours) - 1}, "
                f"got {len(self.colours)} colours and n_doors={n_doors}"
            )
        if split_by not in ("seed", "combination"):
            raise ValueError(f"KeyDoor split_by must be 'seed' or 'combination', got {split_by!r}")
        if split not in ("train", "test"):
            raise ValueError(f"KeyDoor split must be 'train' or 'test', got {split!r}")
        self.n_doors = n_doors
        self.rule = derangement(self.colours, rule_seed)
        self.split = split
        self.split_by = split_by
        self.render_mode = render_mode
        self.observation_space = TEXT
        self.action_space = TEXT
        self._key = self._answer = ""
        self._doors: list[str] = []

    # ---------------------------------------------------------------------- episode
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Draw a key and doors from this split."""
        if seed is not None and self.split == "test" and self.split_by == "seed":
            seed += TEST_SEED_OFFSET  # a seed stream disjoint from training episodes
        super().reset(seed=seed)
        while True:
            key = self.colours[int(self.np_random.integers(len(self.colours)))]
            answer = self.rule[key]
            others = [c for c in self.colours if c not in (answer, key)]
            picks = self.np_random.choice(len(others), self.n_doors - 1, replace=False)
            doors = [answer, *(others[int(i)] for i in picks)]
            if self.split_by == "seed" or self._split_of(key, doors) == self.split:
                break
        order = self.np_random.permutation(len(doors))
        self._key, self._answer, self._doors = key, answer, [doors[int(i)] for i in order]
        return self._observation(), self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Open the door named in ``action``; the episode ends."""
        choice = self.parse(action)
        info = self._info()
        info["choice"] = choice
        if choice is None:
            info["invalid"] = True
            info["feedback"] = f"'{action}' names none of the doors: {', '.join(self._doors)}."
            reward = 0.0
        elif choice == self._answer:
            info["feedback"] = f"The {choice} door opens."
            reward = 1.0
        else:
            info["feedback"] = f"The {choice} door stays locked."
            reward = 0.0
        info["success"] = reward == 1.0
        return "The episode is over.", reward, True, False, info

    def parse(self, action: str) -> str | None:
        """The first door colour named in ``action``, or None."""
        words = [w.strip(string.punctuation) for w in str(action).lower().split()]
        return next((w for w in words if w in self._doors), None)

    def render(self) -> str | None:
        """The observation text (``ansi`` mode)."""
        return self._observation() if self.render_mode == "ansi" else None

    # ---------------------------------------------------------------------- helpers
    def _observation(self) -> str:
        doors = (
            ", ".join(f"a {d} door" for d in self._doors[:-1]) + f" and a {self._doors[-1]} door"
        )
        return f"You hold a {self._key} key. There is {doors}. Which door does your key open?"

    def _info(self) -> dict[str, Any]:
        hint = f"open the {self._answer} door."
        return {
            "privileged": {"hint": hint, "answer": self._answer},
            "key": self._key,
            "doors": list(self._doors),
        }

    @staticmethod
    def _split_of(key: str, doors: list[str]) -> str:
        name = key + ":" + ",".join(sorted(doors))
        return "test" if hashlib.sha256(name.encode()).digest()[0] % 3 == 0 else "train"
