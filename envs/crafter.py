"""Crafter (``crafter``) through mmopsd's wrappers: ``mmopsd/Crafter-v0``.

The benchmark stays the benchmark: Crafter's own world, 17 actions, reward and 22
achievements. On top of it:

- the observation is the 64x64 image and a text status: the nearest thing of each kind in
  the local 9x7 view ("a tree 2 steps left and 1 step up"), what the agent faces, its
  inventory and its health, food, drink and energy;
- the 17 actions by name ("move left", "do", "place table", "make wood pickaxe", ...); other
  text plays ``noop`` with feedback and ``info["invalid"]``, as time passes in Crafter;
- ``info["privileged"]`` from the full semantic map: where the nearest tree, water, stone,
  coal and iron are (even out of view), the next achievement of a fixed tech-tree order, and
  for collecting achievements the expert's ``next_action`` (a shortest walk, then ``do``);
- ``info["achievements"]`` (unlocked so far) and ``info["progression"]``, BALROG's metric:
  achievements unlocked / 22.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from mmopsd.envs.directions import relative
from mmopsd.envs.wrappers import (
    DescribeObservations,
    PrivilegedInfo,
    SeedSplits,
    SuccessInfo,
    TextActions,
)

ACTIONS = (
    "noop", "move left", "move right", "move up", "move down", "do", "sleep", "place stone",
    "place table", "place furnace", "place plant", "make wood pickaxe", "make stone pickaxe",
    "make iron pickaxe", "make wood sword", "make stone sword", "make iron sword",
)  # fmt: skip
MOVES = {"move left": (-1, 0), "move right": (1, 0), "move up": (0, -1), "move down": (0, 1)}
RESOURCES = ("tree", "water", "stone", "coal", "iron")
WALKABLE = {"grass", "sand", "path"}
# The tech tree in the order an expert unlocks it; the target material of collecting goals.
ORDER = (
    ("collect_wood", "tree"), ("place_table", None), ("make_wood_pickaxe", None),
    ("make_wood_sword", None), ("collect_stone", "stone"), ("place_stone", None),
    ("make_stone_pickaxe", None), ("make_stone_sword", None), ("collect_coal", "coal"),
    ("collect_drink", "water"), ("collect_iron", "iron"), ("place_furnace", None),
    ("make_iron_pickaxe", None), ("make_iron_sword", None), ("collect_diamond", "diamond"),
)  # fmt: skip
VIEW = (9, 7)  # the local view's width and height, in cells
N_ACHIEVEMENTS = 22


def make_crafter(split: str = "train", length: int = 10000) -> gym.Env:
    """Crafter as an mmopsd agent environment.

    Args:
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        length: Crafter's episode length in steps.
    """
    env = SuccessInfo(CrafterEnv(length=length), fn=_never)
    env = PrivilegedInfo(env, expert_info)
    env = DescribeObservations(env, Status(), image_shape=(64, 64, 3))
    env = TextActions(env, {name: i for i, name in enumerate(ACTIONS)}, noop=0)
    return SeedSplits(env, split)


class CrafterEnv(gym.Env):
    """Crafter's world behind gymnasium's API (Crafter itself speaks the old 4-tuple).

    Observation: the ``64x64x3`` image; ``terminated`` when the agent dies, ``truncated`` at
    ``length`` steps. ``info`` adds ``achievements`` and ``progression``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, length: int = 10000, render_mode: str | None = None) -> None:
        import crafter

        self.world = crafter.Env(length=length)
        self.length = self.max_steps = length
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.info: dict[str, Any] = {}
        self._image = np.zeros((64, 64, 3), np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A new world from ``seed``."""
        super().reset(seed=seed)
        self.world._seed = int(self.np_random.integers(1 << 30))
        self.world._episode = 0
        self._image = self.world.reset()
        self.info = self._info()
        return self._image.copy(), dict(self.info)

    def step(self, action: int):
        """One Crafter step."""
        image, reward, done, raw = self.world.step(int(action))
        self._image = image
        self.info = self._info()
        dead = bool(done and raw["discount"] == 0)
        return image.copy(), float(reward), dead, bool(done and not dead), dict(self.info)

    def render(self) -> np.ndarray | None:
        """The current image (``rgb_array``)."""
        return self._image.copy() if self.render_mode == "rgb_array" else None

    def _info(self) -> dict[str, Any]:
        player = self.world._player
        unlocked = sorted(k for k, v in player.achievements.items() if v > 0)
        return {
            "achievements": unlocked,
            "progression": len(unlocked) / N_ACHIEVEMENTS,
            "inventory": dict(player.inventory),
        }

    # --------------------------------------------------------------------- the map
    def names(self) -> np.ndarray:
        """The world as names, ``[x, y]`` (materials, and objects where they stand)."""
        world = self.world._world
        mats = np.vectorize(lambda i: world._mat_names.get(i) or "void")(world._mat_map)
        for obj in world.objects:
            x, y = obj.pos
            mats[x, y] = type(obj).__name__.lower()
        return mats

    @property
    def player(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The player's position and facing direction."""
        p = self.world._player
        return (int(p.pos[0]), int(p.pos[1])), (int(p.facing[0]), int(p.facing[1]))


def _never(reward: float, terminated: bool, info: dict[str, Any]) -> bool:
    return False  # Crafter has no success: it is measured by progression


# ---------------------------------------------------------------------------- text
def where(dx: int, dy: int) -> str:
    """``dx`` right and ``dy`` down in words."""
    return relative(dx, dy, ("down", "up"))


@dataclass(frozen=True)
class Status:
    """The image, plus nearby things, what the agent faces, inventory and vitals in words."""

    def __call__(self, image: np.ndarray, env: CrafterEnv) -> dict[str, Any]:
        """The observation as mmopsd's agents read it."""
        names = env.names()
        (x, y), (fx, fy) = env.player
        seen = []
        for kind in sorted({n for n in _window(names, x, y).values()} - {"player", "void"}):
            if kind in WALKABLE:
                continue
            cells = [(cx, cy) for (cx, cy), n in _window(names, x, y).items() if n == kind]
            cx, cy = min(cells, key=lambda c: abs(c[0] - x) + abs(c[1] - y))
            seen.append(f"a {kind} {where(cx - x, cy - y)}")
        inv = env.info.get("inventory", {})
        vitals = ", ".join(f"{k} {inv.get(k, 0)}" for k in ("health", "food", "drink", "energy"))
        items = [f"{k.replace('_', ' ')} {v}" for k, v in inv.items() if v and k not in vitals]
        facing = names[x + fx, y + fy] if _inside(names, x + fx, y + fy) else "the edge"
        text = (
            "You see: " + ("; ".join(seen) or "only open ground") + f".\nYou face {facing}."
            f"\nInventory: {', '.join(items) or 'nothing'}.\nStatus: {vitals}."
        )
        return {"text": text, "image": image}


def _window(names: np.ndarray, x: int, y: int) -> dict[tuple[int, int], str]:
    half_w, half_h = VIEW[0] // 2, VIEW[1] // 2
    return {
        (cx, cy): str(names[cx, cy])
        for cx in range(x - half_w, x + half_w + 1)
        for cy in range(y - half_h, y + half_h + 1)
        if _inside(names, cx, cy)
    }


def _inside(names: np.ndarray, x: int, y: int) -> bool:
    return 0 <= x < names.shape[0] and 0 <= y < names.shape[1]


# ---------------------------------------------------------------------- privileged
def expert_info(env: CrafterEnv) -> dict[str, Any]:
    """Nearest resources on the full map, the next achievement and, for collecting goals,
    the expert's next action."""
    names = env.names()
    (x, y), _ = env.player
    out: dict[str, Any] = {}
    nearest = []
    for kind in RESOURCES:
        cells = np.argwhere(names == kind)
        if len(cells):
            cx, cy = min(cells.tolist(), key=lambda c: abs(c[0] - x) + abs(c[1] - y))
            out[f"nearest_{kind}"] = [int(cx - x), int(cy - y)]
            nearest.append(f"the nearest {kind} is {where(cx - x, cy - y)}")
    unlocked = set(env.info.get("achievements", []))
    goal, target = next(((g, t) for g, t in ORDER if g not in unlocked), (None, None))
    if goal is not None:
        out["next_goal"] = goal.replace("_", " ")
    if target is not None:
        action = walk_to(env, target, names)
        if action is not None:
            out["next_action"] = action
    out["hint"] = "; ".join(nearest) + (f"; next: {out['next_goal']}" if goal else "")
    return out


def walk_to(env: CrafterEnv, target: str, names: np.ndarray | None = None) -> str | None:
    """The first action of a shortest walk to stand facing the nearest ``target``, then
    ``do``; None when none can be reached."""
    names = env.names() if names is None else names
    (x, y), (fx, fy) = env.player
    if _inside(names, x + fx, y + fy) and names[x + fx, y + fy] == target:
        return "do"
    first: dict[tuple[int, int], str | None] = {(x, y): None}
    queue = deque([(x, y)])
    while queue:
        cx, cy = queue.popleft()
        for move, (dx, dy) in MOVES.items():
            nx, ny = cx + dx, cy + dy
            if not _inside(names, nx, ny) or (nx, ny) in first:
                continue
            step = first[(cx, cy)] or move
            if names[nx, ny] == target:
                return step  # from (cx, cy) this move faces the target
            if names[nx, ny] in WALKABLE:
                first[(nx, ny)] = step
                queue.append((nx, ny))
    return None
