"""Sokoban on small rendered boards: push every box onto a target.

Boards are generated from a seed (a walled room, a few inner walls, one or two boxes) and kept
only when the breadth-first solver finds a plan. Observations are the rendered board (and,
optionally, a text grid); actions are ``up``, ``down``, ``left``, ``right``. Privileged
information: the solver's plan from the current state (``plan``, ``expert_plan``,
``next_action``) and the frames the plan leads through (``future_frames``, images).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from mmopsd.envs.base import AgentEnv, Outcome, quote
from mmopsd.envs.drawing import as_array, image_text_space
from mmopsd.envs.seeds import check_split
from PIL import Image, ImageDraw

MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
Pos = tuple[int, int]
State = tuple[Pos, frozenset[Pos]]


def step_state(walls: frozenset[Pos], state: State, move: str) -> State | None:
    """The state after ``move``, or None when the move is blocked."""
    (r, c), boxes = state
    dr, dc = MOVES[move]
    nxt = (r + dr, c + dc)
    if nxt in walls:
        return None
    if nxt in boxes:
        beyond = (nxt[0] + dr, nxt[1] + dc)
        if beyond in walls or beyond in boxes:
            return None
        return nxt, (boxes - {nxt}) | {beyond}
    return nxt, boxes


def solve(
    walls: frozenset[Pos], targets: frozenset[Pos], state: State, limit: int = 20000
) -> list[str] | None:
    """A shortest plan (breadth-first search), or None within ``limit`` states."""
    if state[1] == targets:
        return []
    seen = {state}
    queue: deque[tuple[State, list[str]]] = deque([(state, [])])
    while queue and len(seen) < limit:
        current, plan = queue.popleft()
        for move in MOVES:
            nxt = step_state(walls, current, move)
            if nxt is None or nxt in seen:
                continue
            if nxt[1] == targets:
                return [*plan, move]
            seen.add(nxt)
            queue.append((nxt, [*plan, move]))
    return None


class SokobanEnv(AgentEnv):
    """Push the boxes onto the targets.

    Args:
        size: board side in cells (walls included).
        boxes: boxes per board.
        tile: pixels per cell.
        text_grid: also give the board as text (``#`` wall, ``@`` player, ``$`` box, ``.``
            target, ``*`` box on target).
        frames: future frames given as privileged information.
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        max_steps: step cap.
        render_mode: ``rgb_array`` or None.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self,
        size: int = 6,
        boxes: int = 1,
        tile: int = 32,
        text_grid: bool = True,
        frames: int = 3,
        split: str = "train",
        max_steps: int = 20,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_steps=max_steps)
        if not 5 <= size <= 10 or not 1 <= boxes <= 2:
            raise ValueError(
                f"Sokoban needs 5 <= size <= 10 and 1 <= boxes <= 2, got {size}, {boxes}"
            )
        check_split(split, "Sokoban split")
        self.size, self.n_boxes, self.tile = size, boxes, tile
        self.text_grid, self.frames, self.split = text_grid, frames, split
        self.render_mode = render_mode
        self.observation_space = image_text_space(size * tile, size * tile)
        self.walls: frozenset[Pos] = frozenset()
        self.targets: frozenset[Pos] = frozenset()
        self.state: State = ((0, 0), frozenset())
        self.plan: list[str] = []

    def new_task(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Generate boards until one is solvable in 2 or more moves."""
        while True:
            self._generate()
            plan = solve(self.walls, self.targets, self.state)
            if plan is not None and len(plan) >= 2:
                self.plan = plan
                return self._observation("Push every box onto a target.")

    def admissible(self) -> list[str]:
        """The four moves."""
        return list(MOVES)

    def apply(self, action: str) -> Outcome:
        """Move (a blocked move changes nothing)."""
        nxt = step_state(self.walls, self.state, action)
        if nxt is None:
            return Outcome(
                self._observation(f"You cannot move {action}."), -0.1, False, False, "Blocked."
            )
        self.state = nxt
        won = self.state[1] == self.targets
        self.plan = solve(self.walls, self.targets, self.state) or []
        if won:
            return Outcome(
                self._observation("All boxes are on targets."), 1.0, True, True, "Solved."
            )
        stuck = not self.plan
        text = "A box is stuck; the puzzle cannot be solved." if stuck else f"You moved {action}."
        return Outcome(self._observation(text), -0.1, stuck, False, text)

    def privileged(self) -> dict[str, Any]:
        """The solver's plan from here and the frames along it."""
        if not self.plan:
            return {}
        frames, state = [], self.state
        for move in self.plan[: self.frames]:
            state = step_state(self.walls, state, move) or state
            frames.append(as_array(self.draw(state)))
        return {
            "plan": list(self.plan),
            "expert_plan": ", ".join(self.plan),
            "next_action": self.plan[0],
            "future_frames": frames,
        }

    def render(self) -> np.ndarray | None:
        """The board (``rgb_array`` mode)."""
        return as_array(self.draw(self.state)) if self.render_mode == "rgb_array" else None

    def grid(self, state: State | None = None) -> str:
        """The board as text."""
        (pr, pc), boxes = state or self.state
        rows = []
        for r in range(self.size):
            row = ""
            for c in range(self.size):
                p = (r, c)
                row += (
                    "#"
                    if p in self.walls
                    else "@"
                    if p == (pr, pc)
                    else "*"
                    if p in boxes and p in self.targets
                    else "$"
                    if p in boxes
                    else "."
                    if p in self.targets
                    else " "
                )
            rows.append(row)
        return "\n".join(rows)

    def draw(self, state: State) -> Image.Image:
        """The board as an image."""
        t = self.tile
        image = Image.new("RGB", (self.size * t, self.size * t), (205, 195, 170))
        d = ImageDraw.Draw(image)
        (pr, pc), boxes = state
        for r in range(self.size):
            for c in range(self.size):
                x, y = c * t, r * t
                if (r, c) in self.walls:
                    d.rectangle([x, y, x + t - 1, y + t - 1], fill=(80, 80, 90))
                if (r, c) in self.targets:
                    d.ellipse(
                        [x + t // 4, y + t // 4, x + 3 * t // 4, y + 3 * t // 4],
                        outline=(200, 40, 40),
                        width=3,
                    )
                if (r, c) in boxes:
                    colour = (60, 160, 60) if (r, c) in self.targets else (150, 100, 40)
                    d.rectangle(
                        [x + 4, y + 4, x + t - 5, y + t - 5], fill=colour, outline=(60, 40, 20)
                    )
        x, y = pc * t, pr * t
        d.ellipse([x + 6, y + 6, x + t - 7, y + t - 7], fill=(40, 90, 200))
        return image

    def invalid_observation(self, action: str) -> dict[str, Any]:
        """The board again, with the valid moves."""
        return self._observation(
            f"'{quote(action, 40)}' is not a move: use up, down, left or right."
        )

    def _observation(self, note: str) -> dict[str, Any]:
        text = note + ("\n" + self.grid() if self.text_grid else "")
        return {"text": text, "image": as_array(self.draw(self.state))}

    def _generate(self) -> None:
        rng, n = self.np_random, self.size
        walls = {(r, c) for r in range(n) for c in range(n) if r in (0, n - 1) or c in (0, n - 1)}
        inner = [(r, c) for r in range(1, n - 1) for c in range(1, n - 1)]
        for i in rng.choice(len(inner), int(rng.integers(0, n - 3)), replace=False):
            walls.add(inner[int(i)])
        free = [p for p in inner if p not in walls]
        picks = rng.choice(len(free), 1 + 2 * self.n_boxes, replace=False)
        cells = [free[int(i)] for i in picks]
        self.walls = frozenset(walls)
        self.state = (cells[0], frozenset(cells[1 : 1 + self.n_boxes]))
        self.targets = frozenset(cells[1 + self.n_boxes :])
