"""KeyDoor: a row of rooms; in each you hold a coloured key and one of the doors opens.

A fixed hidden rule maps each key colour to a door colour (a derangement drawn from
``rule_seed``: no key opens the door of its own colour). The student sees only the key and the
doors; the privileged hint names the right door of the current room. The rule is a shared
latent the student can internalise, so self-distillation with the hint works.

An episode has ``n_rooms`` rooms, one choice per room: the right door leads to the next room,
a wrong door ends the episode with feedback. Success means passing every room; each room
passed earns ``1 / n_rooms``. Naming no door is an invalid action: feedback, no progress.

Distractor doors never have the key's own colour, so "avoid your key's colour" is no
shortcut; with the default four colours no door-colour preference order solves every room
either: only the key -> door rule does.

Splits: with ``split_by="seed"`` (default) ``train`` and ``test`` draw episodes from disjoint
seed streams of the same distribution (held-out episodes). With ``split_by="combination"``
they never share a (key, set of doors) combination, a harder out-of-distribution split.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass
from typing import Any

from mmopsd.envs.base import AgentEnv, Outcome, quote
from mmopsd.envs.seeds import check_split

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")


def derangement(colours: tuple[str, ...], seed: int) -> dict[str, str]:
    """A key -> door map in which no key opens the door of its own colour."""
    rng = random.Random(seed)
    while True:
        doors = list(colours)
        rng.shuffle(doors)
        if all(k != d for k, d in zip(colours, doors)):
            return dict(zip(colours, doors))


@dataclass(frozen=True)
class Room:
    """One room: the key held, the doors (in display order) and the door the key opens."""

    key: str
    doors: tuple[str, ...]
    answer: str


class KeyDoorEnv(AgentEnv):
    """Pick, room after room, the door that your key opens.

    Observation: text describing the room. Action: text naming a door colour (e.g. ``"blue"``
    or ``"I open the blue door."``). ``info["privileged"]`` holds ``hint`` (a sentence naming
    the door), ``answer`` (the door colour) and ``room`` (0-based).

    Args:
        colours: the palette of keys and doors.
        n_doors: doors per room (the right one plus distractors).
        n_rooms: rooms per episode.
        rule_seed: seed of the hidden key -> door rule.
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        split_by: ``seed`` (disjoint seed streams) or ``combination`` (disjoint key/door sets).
        max_steps: step cap (default: twice the number of rooms).
        render_mode: ``ansi`` or None.
    """

    def __init__(
        self,
        colours: tuple[str, ...] | list[str] = COLOURS[:4],
        n_doors: int = 2,
        n_rooms: int = 3,
        rule_seed: int = 0,
        split: str = "train",
        split_by: str = "seed",
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if n_rooms < 1:
            raise ValueError(f"KeyDoor needs n_rooms >= 1, got {n_rooms}")
        super().__init__(max_steps=max_steps or 2 * n_rooms, render_mode=render_mode)
        self.colours = tuple(colours)
        if len(self.colours) < 3 or not 2 <= n_doors <= len(self.colours) - 1:
            raise ValueError(
                f"need at least 3 colours and 2 <= n_doors <= {len(self.colours) - 1}, "
                f"got {len(self.colours)} colours and n_doors={n_doors}"
            )
        if split_by not in ("seed", "combination"):
            raise ValueError(f"KeyDoor split_by must be 'seed' or 'combination', got {split_by!r}")
        check_split(split, "KeyDoor split")
        self.n_doors = n_doors
        self.n_rooms = n_rooms
        self.rule = derangement(self.colours, rule_seed)
        self.split = split
        self.split_by = split_by
        self.rooms: list[Room] = []
        self.room = 0

    # ---------------------------------------------------------------------- episode
    @property
    def seed_stream(self) -> str:
        """With ``split_by="combination"`` test episodes draw from the training stream (their
        combinations differ) and validation episodes, which share the test combinations,
        from their own."""
        if self.split_by == "combination" and self.split == "test":
            return "train"
        return self.split

    def new_task(self, options: dict[str, Any] | None) -> str:
        """Draw ``n_rooms`` rooms; describe the first."""
        self.rooms = [self._draw_room() for _ in range(self.n_rooms)]
        self.room = 0
        return self.describe()

    def apply(self, action: str) -> Outcome:
        """Open the named door."""
        current = self.rooms[self.room]
        if action != current.answer:
            text = f"The {action} door stays locked. The episode is over."
            return Outcome(text, 0.0, True, False, f"The {action} door stays locked.")
        self.room += 1
        opened = f"The {action} door opens."
        if self.room == self.n_rooms:
            done = f"{opened} You passed all {self.n_rooms} rooms." if self.n_rooms > 1 else opened
            return Outcome(done, 1.0 / self.n_rooms, True, True, opened)
        return Outcome(f"{opened} {self.describe()}", 1.0 / self.n_rooms, False, False, opened)

    def canonical(self, action: str) -> str | None:
        """The first door colour of the current room named in ``action``, or None."""
        doors = self.rooms[min(self.room, len(self.rooms) - 1)].doors
        words = [w.strip(string.punctuation) for w in str(action).lower().split()]
        return next((w for w in words if w in doors), None)

    def privileged(self) -> dict[str, Any]:
        """The current room's hint and answer."""
        if not self.rooms or self.room >= self.n_rooms:
            return {}
        answer = self.rooms[self.room].answer
        return {"hint": f"open the {answer} door.", "answer": answer, "room": self.room}

    def describe(self) -> str:
        """The current room in words."""
        r = self.rooms[self.room]
        doors = ", ".join(f"a {d} door" for d in r.doors[:-1]) + f" and a {r.doors[-1]} door"
        where = f"You are in room {self.room + 1} of {self.n_rooms}. " if self.n_rooms > 1 else ""
        return f"{where}You hold a {r.key} key. There is {doors}. Which door does your key open?"

    def invalid_observation(self, action: str) -> str:
        """Feedback naming the doors, then the room again."""
        doors = ", ".join(self.rooms[self.room].doors)
        return f"'{quote(action)}' names none of the doors: {doors}. {self.describe()}"

    # ---------------------------------------------------------------------- helpers
    def _info(self) -> dict[str, Any]:
        info = super()._info()
        if self.rooms and self.room < self.n_rooms:
            info.update(key=self.rooms[self.room].key, doors=list(self.rooms[self.room].doors))
        return info

    def _draw_room(self) -> Room:
        rng = self.np_random
        while True:
            key = self.colours[int(rng.integers(len(self.colours)))]
            answer = self.rule[key]
            others = [c for c in self.colours if c not in (answer, key)]
            picks = rng.choice(len(others), self.n_doors - 1, replace=False)
            doors = [answer, *(others[int(i)] for i in picks)]
            held_out = "train" if self.split == "train" else "test"
            if self.split_by == "seed" or self._split_of(key, doors) == held_out:
                break
        order = rng.permutation(len(doors))
        return Room(key, tuple(doors[int(i)] for i in order), answer)

    @staticmethod
    def _split_of(key: str, doors: list[str]) -> str:
        name = key + ":" + ",".join(sorted(doors))
        return "test" if hashlib.sha256(name.encode()).digest()[0] % 3 == 0 else "train"
