"""``mmopsd/ALFWorld-v0``: household tasks in alfworld's text engine, as a gymnasium env.

Games come from ``$ALFWORLD_DATA`` (the official train / valid_seen / valid_unseen splits)
when it holds them, else from the offline generator (:mod:`mmopsd.envs.alfworld_games`).
Observations are alfworld's text; ``info["admissible_commands"]`` lists the valid commands;
``info["privileged"]`` holds the planner expert's plan from the current state
(``expert_plan``, a sentence; ``plan``, a list), its next action (``next_action``) and a
``hint`` sentence stating both. Success is alfworld's
``won``; reward 1 on winning; episodes are truncated after 50 steps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmopsd.envs.alfworld_engine import has_official_games, official_games, start_game
from mmopsd.envs.alfworld_games import SPLITS, TASK_TYPES, generated_game
from mmopsd.envs.base import AgentEnv, Outcome

BANNER = "-= Welcome to TextWorld, ALFRED! =-"


class ALFWorldEnv(AgentEnv):
    """One ALFWorld game per episode.

    Args:
        split: ``train``, ``validation``, ``valid_seen`` or ``valid_unseen`` (``test`` means
            ``valid_seen``).
        source: ``auto`` (official games when ``$ALFWORLD_DATA`` has them, else generated),
            ``official`` or ``generated``.
        task_types: the task types to draw from.
        games_dir: where generated games are written (default:
            ``$ALFWORLD_DATA/mmopsd-generated``).
        max_steps: the step cap (50, as in the ALFWorld literature).
        render_mode: ``ansi`` or None.
    """

    def __init__(
        self,
        split: str = "train",
        source: str = "auto",
        task_types: tuple[str, ...] | list[str] = TASK_TYPES,
        games_dir: str | None = None,
        max_steps: int = 50,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_steps=max_steps, render_mode=render_mode)
        split = "valid_seen" if split == "test" else split
        if split not in SPLITS:
            raise ValueError(f"unknown ALFWorld split {split!r}; use one of {', '.join(SPLITS)}")
        if source not in ("auto", "official", "generated"):
            raise ValueError(f"ALFWorld source must be auto, official or generated, not {source!r}")
        data = os.environ.get("ALFWORLD_DATA")
        official = has_official_games(data)
        if source == "official" and not official:
            raise FileNotFoundError(
                f"no official ALFWorld games under ALFWORLD_DATA={data!r} (json_2.1.1/ is "
                "missing); run alfworld-download there, or use source='generated'"
            )
        self.split = split
        self.task_types = tuple(task_types)
        self.source = (
            "official" if source == "official" or (source == "auto" and official) else "generated"
        )
        if self.source == "official" and split == "validation":
            raise ValueError(
                "the official ALFWorld games have no validation split: make choices on "
                "source='generated' games, or hold out part of train yourself"
            )
        default_root = Path(data) if data else Path.home() / ".cache" / "alfworld"
        self.games_dir = Path(games_dir) if games_dir else default_root / "mmopsd-generated"
        if self.source == "generated":
            _writable(self.games_dir, "games_dir" if games_dir else f"ALFWORLD_DATA={data!r}")
        self._official: list[str] | None = None
        self._game: Any = None
        self._state: Any = None
        self.game_file = ""
        self.task_type = ""

    # ------------------------------------------------------------------ AgentEnv
    @property
    def seed_stream(self) -> str:
        """Seeds as given: each split's games are drawn from a stream of their own
        (:data:`~mmopsd.envs.alfworld_games.SPLIT_SEED_OFFSET`) or are another game set."""
        return "train"

    def new_task(self, options: dict[str, Any] | None) -> str:
        """Load the game of this seed and return alfworld's opening text."""
        seed = int(self.np_random.integers(1 << 31))
        self.game_file = str(self._game_file(seed))
        traj = Path(self.game_file).parent / "traj_data.json"
        self.task_type = json.loads(traj.read_text())["task_type"] if traj.exists() else "unknown"
        if self._game is not None:
            self._game.close()
        self._game = start_game(self.game_file)
        self._state = self._game.reset()
        return self._state.feedback.replace(BANNER, "").strip()

    def apply(self, action: str) -> Outcome:
        """One alfworld command."""
        self._state, _, done = self._game.step(action)
        won = bool(self._state["won"])
        text = self._state.feedback.strip()
        return Outcome(text, float(won), bool(done) or won, won, text)

    def admissible(self) -> list[str] | None:
        """alfworld's admissible commands ("help" left out)."""
        if self._state is None:
            return None
        return [c for c in self._state["admissible_commands"] if c != "help"]

    def privileged(self) -> dict[str, Any]:
        """The planner expert's plan from here and its next action."""
        plan = list(self._state["extra.expert_plan"]) if self._state is not None else []
        if not plan:
            return {}
        text = ", then ".join(plan)
        return {
            "expert_plan": text,
            "next_action": plan[0],
            "plan": plan,
            "hint": f"The expert's plan from here: {text}. The next action is: {plan[0]}.",
        }

    def invalid_observation(self, action: str) -> str:
        """alfworld's own answer to an impossible command."""
        return "Nothing happens."

    def close(self) -> None:
        """Close the text engine."""
        if self._game is not None:
            self._game.close()
            self._game = None

    # ------------------------------------------------------------------- helpers
    def _info(self) -> dict[str, Any]:
        info = super()._info()
        if self.game_file:
            info.update(game_file=self.game_file, task_type=self.task_type)
        return info

    def _game_file(self, seed: int) -> Path:
        if self.source == "generated":
            return generated_game(self.games_dir, self.split, seed, self.task_types)
        if self._official is None:
            data = os.environ["ALFWORLD_DATA"]
            self._official = official_games(data, self.split, self.task_types)
        if not self._official:
            raise FileNotFoundError(f"no solvable official ALFWorld games in split {self.split}")
        return Path(self._official[seed % len(self._official)])


def _writable(folder: Path, origin: str) -> None:
    """Create ``folder`` now, so a bad location is an error at construction, not mid-run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"cannot create the ALFWorld game folder {folder} (from {origin}): {err.strerror}; "
            "point ALFWORLD_DATA (or games_dir) at a writable directory"
        ) from err
