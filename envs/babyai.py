"""BabyAI (Farama ``minigrid``) through mmopsd's wrappers: ``mmopsd/BabyAI-<Level>-v0``.

The benchmark stays the benchmark: minigrid's own levels, reset, step, reward and ending. On
top of it, as in BabyAI-Text and BALROG:

- the observation is text describing the agent's 7x7 view ("a red ball 2 steps left and 3
  steps forward", the walls nearest ahead and to the sides, what is right in front, what the
  agent carries), after the mission; optionally also the image of that view;
- six text actions: turn left, turn right, go forward, pick up, drop, toggle; other text
  plays minigrid's no-op ``done`` with feedback and ``info["invalid"]``;
- ``info["privileged"]`` from minigrid's own ``BabyAIBot``: ``next_action`` (the bot's next
  move), ``expert_plan`` (its stack of subgoals as text) and ``hint`` (both in a sentence).
  Where the bot cannot plan a state, these keys are left out.

minigrid 3.2 needs Python >= 3.11 (``pip install "mmopsd[babyai]"``); the ids are registered
on every Python and say so when made without it.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from mmopsd.envs.directions import relative
from mmopsd.envs.wrappers import DescribeObservations, SeedSplits, SuccessInfo, TextActions

ACTIONS = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle")
NOOP = 6  # minigrid's "done": nothing happens in BabyAI levels
VIEW = 7  # minigrid's agent view is 7x7; the agent sits at column 3 of the last row
HIDDEN = {"unseen", "empty", "floor", "agent"}


def make_babyai(
    level: str,
    split: str = "train",
    image: bool = False,
    tile_size: int = 8,
    render_mode: str | None = None,
) -> gym.Env:
    """A BabyAI level as an mmopsd agent environment.

    Args:
        level: the BabyAI level name (``GoToLocal``, ``PutNextLocal``, ``SynthSeq``, ...).
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        image: also return the image of the agent's view (``{"text", "image"}``).
        tile_size: pixels per grid cell of that image.
        render_mode: minigrid's render mode (``rgb_array`` for frames).
    """
    minigrid = _minigrid()
    gym.register_envs(minigrid)
    inner = gym.make(f"BabyAI-{level}-v0", render_mode=render_mode, disable_env_checker=True)
    env = BotInfo(SuccessInfo(inner))
    shape = (VIEW * tile_size, VIEW * tile_size, 3) if image else None
    env = DescribeObservations(env, Describer(image, tile_size), image_shape=shape)
    # Text that is no action plays minigrid's no-op ``done``: it costs a step, as in BALROG,
    # and minigrid's own step cap truncates the episode.
    env = TextActions(env, ACTIONS, noop=NOOP)
    return SeedSplits(env, split)


class BotInfo(gym.Wrapper, RecordConstructorArgs):
    """``info["privileged"]`` from minigrid's ``BabyAIBot``: next action and subgoal plan."""

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.bot: Any = None
        self._next: int | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset (minigrid's level sampler prints its rejections: kept quiet) and a new bot."""
        from minigrid.utils.baby_ai_bot import BabyAIBot

        with contextlib.redirect_stdout(io.StringIO()):
            obs, info = self.env.reset(**kwargs)
        self.bot = BabyAIBot(self.env.unwrapped)
        self._next = self._replan(None)
        return obs, self._with_privileged(info)

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; the bot replans from the action actually taken."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._next = None if terminated or truncated else self._replan(int(action))
        return obs, reward, terminated, truncated, self._with_privileged(info)

    def _replan(self, last: int | None) -> int | None:
        if self.bot is None:
            return None
        try:
            return int(self.bot.replan(last))
        except Exception:  # the bot gives up on this state: no privileged keys from here on
            self.bot = None
            return None

    def _with_privileged(self, info: dict[str, Any]) -> dict[str, Any]:
        privileged = dict(info.get("privileged", {}))
        if self._next is not None and self._next < len(ACTIONS):
            privileged["next_action"] = ACTIONS[self._next]
            privileged["expert_plan"] = plan_text(self.bot, self.env.unwrapped)
            privileged["hint"] = (
                f"The expert's next action: {ACTIONS[self._next]}. "
                f"Its plan: {privileged['expert_plan']}."
            )
        return {**info, "privileged": privileged}


def plan_text(bot: Any, env: Any) -> str:
    """The bot's subgoal stack, next subgoal first, in words."""
    steps = []
    for goal in reversed(bot.stack):
        name = type(goal).__name__.removesuffix("Subgoal")
        if name == "GoNextTo":
            steps.append(f"go next to {_target(goal.datum, env)}")
        else:
            words = {"Pickup": "pick up", "Drop": "drop", "Open": "open the door ahead"}
            steps.append(words.get(name, name.lower()))
    return ", then ".join(steps)


def _target(datum: Any, env: Any) -> str:
    """A subgoal's target in the agent's words: an object, or a cell relative to the agent."""
    if hasattr(datum, "type") and hasattr(datum, "color"):  # minigrid's ObjDesc
        return " ".join(w for w in ("the", datum.color, datum.type) if w)
    pos = np.asarray(datum)
    if pos.shape != (2,):
        return str(datum)
    cell = env.grid.get(int(pos[0]), int(pos[1]))
    if cell is not None and cell.type != "wall":
        return f"the {cell.color} {cell.type}"
    ahead = np.asarray(env.dir_vec)
    right = np.array([-ahead[1], ahead[0]])
    offset = pos - np.asarray(env.agent_pos)
    return f"the cell {relative(int(offset @ right), int(offset @ ahead))}"


def describe_view(grid: np.ndarray, carrying: Any = None) -> list[str]:
    """Lines describing a ``7x7x3`` minigrid view (object, colour, state per cell)."""
    from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

    me = (VIEW // 2, VIEW - 1)
    lines, walls = [], {}
    for i in range(VIEW):
        for j in range(VIEW):
            kind = IDX_TO_OBJECT[int(grid[i, j, 0])]
            if kind in HIDDEN or (i, j) == me:
                continue
            where = relative(i - me[0], me[1] - j)
            if kind == "wall":
                side = "forward" if i == me[0] else "row" if j == me[1] else None
                if side and (side not in walls or abs(i - me[0]) + me[1] - j < walls[side][0]):
                    walls[side] = (abs(i - me[0]) + me[1] - j, f"a wall {where}")
                continue
            lines.append(f"{_name(kind, IDX_TO_COLOR[int(grid[i, j, 1])], grid[i, j, 2])} {where}")
    lines += [text for _, text in walls.values()]
    ahead = IDX_TO_OBJECT[int(grid[me[0], me[1] - 1, 0])]
    if ahead not in HIDDEN:
        cell = grid[me[0], me[1] - 1]
        lines.append(f"Right in front of you: {_name(ahead, IDX_TO_COLOR[int(cell[1])], cell[2])}.")
    if carrying is not None:
        lines.append(f"You carry {_name(carrying.type, carrying.color, None)}.")
    return lines


def _name(kind: str, colour: str, state: Any) -> str:
    if kind == "wall":
        return "a wall"
    if kind == "door":
        door = {0: "open", 1: "closed", 2: "locked"}.get(int(state) if state is not None else 0)
        return f"an {door} {colour} door" if door == "open" else f"a {door} {colour} door"
    return f"a {colour} {kind}"


@dataclass(frozen=True)
class Describer:
    """Mission and view in words, plus the view's image when ``image`` is set (a value, so
    that ``env.spec`` rebuilds the same wrapper stack)."""

    image: bool = False
    tile_size: int = 8

    def __call__(self, obs: dict[str, Any], env: Any) -> str | dict[str, Any]:
        """The observation as mmopsd's agents read it."""
        seen = describe_view(obs["image"], env.carrying) or ["nothing but the floor"]
        text = f"Mission: {obs['mission']}.\nYou see:\n" + "\n".join(seen)
        if not self.image:
            return text
        frame = env.get_frame(highlight=False, tile_size=self.tile_size, agent_pov=True)
        return {"text": text, "image": frame}


def _minigrid() -> Any:
    try:
        import minigrid
    except ImportError as err:
        raise ImportError(
            "BabyAI needs minigrid (Python >= 3.11): pip install 'mmopsd[babyai]'"
        ) from err
    return minigrid
